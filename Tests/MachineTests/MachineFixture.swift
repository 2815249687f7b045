import CommandLineOptions
import Foundation
import Machine
import Synchronization

/// Builds machines in this process from svmm's own command line, with the serial console in a
/// file, and runs work on a machine's loop synchronously. Needs /dev/kvm and the guest image:
/// fails (never skips) without them.
enum MachineFixture {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var guestImage: String {
        ProcessInfo.processInfo.environment["GUEST_ELF"] ?? packageRoot.appendingPathComponent("guest-images/out/blkguest.elf").path
    }

    static func requireKVMAndGuest() throws {
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else { throw Failure("/dev/kvm is missing: these tests need KVM") }
        guard FileManager.default.fileExists(atPath: guestImage) else { throw Failure("guest image not found at \(guestImage): run `make guest`") }
    }

    /// The start of a test that runs the writer guest: KVM and the guest are there, a fresh
    /// scratch directory, and in it a sparse 1 MiB `disk.raw` for the guest to write.
    static func writerScratch() throws -> (directory: URL, disk: String) {
        try requireKVMAndGuest()
        let directory = try scratchDirectory()
        let disk = directory.appendingPathComponent("disk.raw").path
        try sparseFile(disk, size: 1 << 20)
        return (directory, disk)
    }

    static func scratchDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-machine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func sparseFile(_ path: String, size: Int) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
    }

    /// `svmm ARGS` as a config, with `-serial file:SERIAL`.
    static func config(_ arguments: [String], serial: String) throws -> MachineConfig {
        guard case .run(let config) = try CommandLineParser.parse(arguments + ["-serial", "file:\(serial)"]) else {
            throw Failure("not a machine command line: \(arguments)")
        }
        return config
    }

    /// The writer guest on a raw disk at `disk`.
    static func writerArguments(disk: String) -> [String] {
        ["-m", "64M", "-kernel", guestImage, "-append", "mode=writer",
         "-blockdev", "driver=file,node-name=d0,filename=\(disk)",
         "-device", "virtio-blk-device,drive=d0,id=vblk0,serial=mig"]
    }

    /// Runs `body` on `machine`'s loop and returns its result.
    static func onLoop<T: Sendable>(_ machine: Machine, _ body: @escaping @Sendable (Machine) throws -> T) throws -> T {
        try machine.loopBound.performAndWait { machine in Result { try body(machine) } }.get()
    }

    static func contents(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Waits (up to `seconds`, a wide margin) until `path` holds a line matching `done`.
    @discardableResult
    static func waitForSerial(_ path: String, seconds: Double = 120, until done: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = contents(path)
            if text.contains("FAIL") || text.contains("EXCEPTION") { throw Failure("guest failed:\n\(text.suffix(2000))") }
            if done(text) { return text }
            usleep(20_000)
        }
        throw Failure("timed out waiting on the guest; its console so far:\n\(contents(path).suffix(2000))")
    }

    /// The highest `WRITER round <g> ok` in a console log.
    static func lastWriterRound(_ text: String) -> Int {
        text.split(separator: "\n").compactMap { line -> Int? in
            let words = line.split(separator: " ")
            guard words.count == 4, words[0] == "WRITER", words[1] == "round", words[3] == "ok" else { return nil }
            return Int(words[2])
        }.max() ?? 0
    }
}

/// What a machine's `onStop` reported (the guest exited or KVM failed).
final class StopRecorder: Sendable {
    private let stops = Mutex<[String]>([])
    var all: [String] { stops.withLock { $0 } }
    func record(_ message: String, _ status: Int32) { stops.withLock { $0.append("status \(status): \(message)") } }
}
