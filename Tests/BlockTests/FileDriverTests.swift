@testable import Block
import Foundation
import Glibc
import Testing

/// The `file` driver under O_DIRECT with requests smaller than a sector, on both engines.
@Suite struct FileDriverTests {
    private let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("file-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    @Test(arguments: [FileOptions.AioMode.native, .threads])
    func concurrentOneByteWritesIntoOneSectorAllLand(aio: FileOptions.AioMode) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let (driver, engine) = try open(aio: aio, bytes: [UInt8](repeating: 0, count: 4096))
        var done = 0
        var failures: [BlockError] = []
        var buffers: [UnsafeMutableRawBufferPointer] = []
        defer { buffers.forEach { $0.deallocate() } }
        // 64 read-modify-writes of one sector in flight at once (QEMU's tracked requests make them take turns).
        for index in 0..<64 {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
            buffer[0] = UInt8(index + 1)
            buffers.append(buffer)
            driver.write(at: Int64(index * 3), from: IoVector(buffer)) { result in
                if case .failure(let error) = result { failures.append(error) }
                done += 1
            }
        }
        try wait(engine) { done == 64 }
        #expect(failures.isEmpty, "\(failures)")
        let bytes = try driver.readSync(at: 0, count: 512)
        for index in 0..<64 {
            #expect(bytes[index * 3] == UInt8(index + 1), "byte \(index * 3) lost")
        }
        #expect(bytes.enumerated().allSatisfy { $0.offset % 3 == 0 && $0.offset < 192 || $0.element == 0 })
    }

    @Test(arguments: [FileOptions.AioMode.native, .threads])
    func anAlignedWriteOverlappingAReadModifyWriteIsNotUndone(aio: FileOptions.AioMode) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let (driver, engine) = try open(aio: aio, bytes: [UInt8](repeating: 0, count: 4096))
        let byte = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
        byte[0] = 0xaa
        let sector = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 4096)
        sector.initializeMemory(as: UInt8.self, repeating: 0x55)
        defer { byte.deallocate(); sector.deallocate() }
        var done = 0
        // The 1-byte write reads the sector, then writes it back: the aligned write started after it
        // must land after it, or the read-modify-write would put back the old bytes over it.
        driver.write(at: 7, from: IoVector(byte)) { _ in done += 1 }
        driver.write(at: 0, from: IoVector(sector)) { _ in done += 1 }
        try wait(engine) { done == 2 }
        #expect(try driver.readSync(at: 0, count: 512) == [UInt8](repeating: 0x55, count: 512))
    }

    @Test(arguments: [FileOptions.AioMode.native, .threads])
    func unalignedReadsSeeEarlierOverlappingWrites(aio: FileOptions.AioMode) throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let (driver, engine) = try open(aio: aio, bytes: [UInt8](repeating: 0, count: 4096))
        let byte = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
        byte[0] = 0x42
        let readBack = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
        readBack[0] = 0
        defer { byte.deallocate(); readBack.deallocate() }
        var done = 0
        driver.write(at: 1000, from: IoVector(byte)) { _ in done += 1 }
        driver.read(at: 1000, into: IoVector(readBack)) { _ in done += 1 }
        try wait(engine) { done == 2 }
        #expect(readBack[0] == 0x42)
    }

    // MARK: Helpers

    private func open(aio: FileOptions.AioMode, bytes: [UInt8]) throws -> (FileDriver, FileIoEngine) {
        let path = directory.appendingPathComponent("disk.raw").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var options = FileOptions(filename: path)
        options.aio = aio
        options.locking = false
        let engine: FileIoEngine = aio == .native ? try AioContext() : try ThreadPoolIo(threads: 4)
        return (try FileDriver(options: options, engine: engine), engine)
    }

    /// Runs the engine's completions on this thread (the test's event loop) until `done` holds.
    private func wait(_ engine: FileIoEngine, until done: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(60)
        while !done() {
            guard Date() < deadline else { throw Qcow2Fixture.Failure("requests did not complete within 60 s") }
            var descriptor = pollfd(fd: engine.eventFd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 20)
            engine.processCompletions()
        }
    }
}
