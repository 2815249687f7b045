@testable import Block
import Foundation
import Glibc
import Testing

/// A scratch directory of real images, the QEMU tools that make and check them, and a libaio
/// context driven by hand until requests complete.
final class Qcow2Fixture {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    let directory: URL
    let aio: AioContext
    /// The nodes `qcow2(_:)` opens, with their edges.
    let graph = BlockGraph()

    init() throws {
        for tool in ["qemu-img", "qemu-io"] where !FileManager.default.isExecutableFile(atPath: "/usr/bin/\(tool)") {
            throw Failure("/usr/bin/\(tool) is missing: these tests need QEMU's tools (apt-get install qemu-utils)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qcow2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        aio = try AioContext()
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    // MARK: QEMU's tools

    /// Runs /usr/bin/`tool` in the scratch directory: exit status and output (stdout and stderr).
    func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/\(tool)")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Runs a tool that must succeed.
    @discardableResult
    func tool(_ tool: String, _ arguments: String...) throws -> String {
        let (status, output) = try run(tool, arguments)
        guard status == 0 else { throw Failure("\(tool) \(arguments.joined(separator: " ")) exited \(status): \(output)") }
        return output
    }

    /// `qemu-img check` finds no errors and no leaks.
    func expectClean(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (status, output) = try run("qemu-img", ["check", path(name)])
        #expect(status == 0, "qemu-img check: \(output)", sourceLocation: sourceLocation)
        #expect(output.contains("No errors were found on the image."), "qemu-img check: \(output)", sourceLocation: sourceLocation)
    }

    /// `qemu-img compare` finds the image (through its backing chain) identical to `expected`.
    func expectContents(_ name: String, _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let raw = path(name + ".expected.raw")
        try Data(expected).write(to: URL(fileURLWithPath: raw))
        let (status, output) = try run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", path(name), raw])
        #expect(status == 0 && output.contains("Images are identical."), "qemu-img compare: \(output)", sourceLocation: sourceLocation)
    }

    func makeRaw(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path(name)))
    }

    func fileBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    // MARK: Drivers

    func file(_ name: String, readOnly: Bool = false) throws -> FileDriver {
        var options = FileOptions(filename: path(name))
        options.readOnly = readOnly
        return try FileDriver(options: options, engine: aio)
    }

    /// A qcow2 node over a file node in the fixture's graph (no image locks, so QEMU's tools can
    /// look at the image while it is open); `backing` must be a driver this fixture opened.
    /// `tinyCaches`: four L2 tables and four refcount blocks, so metadata is evicted all the time.
    func qcow2(_ name: String, backing: BlockDriver? = nil, readOnly: Bool = false, tinyCaches: Bool = false) throws -> Qcow2Driver {
        var options = FileOptions(filename: path(name))
        options.readOnly = readOnly
        options.locking = false
        let file = BlockNode(nodeName: graph.makeAutoName(), driverName: "file", driver: try FileDriver(options: options, engine: aio),
                             readOnly: readOnly)
        try graph.add(file)
        let node = BlockNode(nodeName: graph.makeAutoName(), driverName: "qcow2", driver: UnopenedDriver(), readOnly: readOnly)
        try graph.add(node)
        let edge = try graph.attachChild(file, to: node, name: "file", role: .image)
        let limits = tinyCaches ? Qcow2CacheLimits(l2Bytes: 0, refcountBytes: 0) : .standard
        let driver = try Qcow2Driver(file: edge, readOnly: readOnly, cacheLimits: limits)
        node.driver = driver
        if let backing {
            let backingNode = try #require(graph.nodes.first { $0.driver === backing }, "backing was not opened by this fixture")
            driver.setBacking(try graph.attachChild(backingNode, to: node, name: "backing", role: .cow))
        }
        return driver
    }

    /// Runs the event loop (this test's libaio completions) until `done` holds.
    func wait(until done: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(60)
        while !done() {
            guard Date() < deadline else { throw Failure("requests did not complete within 60 s") }
            var descriptor = pollfd(fd: aio.eventFd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 20)
            aio.processCompletions()
        }
    }

    /// Starts one request and runs the loop until it completes.
    @discardableResult
    func complete(_ start: (@escaping IoCompletion) -> Void) throws -> Int {
        var outcome: Result<Int, BlockError>?
        start { outcome = $0 }
        try wait { outcome != nil }
        return try outcome!.get()
    }

    func read(_ driver: BlockDriver, at offset: Int64, count: Int) throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xee)
        try complete { driver.read(at: offset, into: IoVector(buffer), completion: $0) }
        return Array(buffer)
    }

    func write(_ driver: BlockDriver, _ bytes: [UInt8], at offset: Int64) throws {
        let buffer = Qcow2Fixture.buffer(bytes)
        defer { buffer.deallocate() }
        try complete { driver.write(at: offset, from: IoVector(buffer), completion: $0) }
    }

    func flush(_ driver: BlockDriver) throws {
        try complete { driver.flush(completion: $0) }
    }

    /// An aligned copy of `bytes` for O_DIRECT; the caller deallocates it.
    static func buffer(_ bytes: [UInt8]) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 4096)
        buffer.copyBytes(from: bytes)
        return buffer
    }

    static func pattern(_ byte: UInt8, _ count: Int) -> [UInt8] { [UInt8](repeating: byte, count: count) }

    /// Bytes that differ at every 512-byte sector, so misplaced sectors show.
    static func numbered(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 / 512 + seed) * 31 + $0 % 7) }
    }
}
