import Foundation
import Testing
@testable import NBD

/// nbdcopy of 1 GiB through the in-process server and through qemu-nbd (NBD_BENCH=1 to run;
/// meaningful in a release build: swift test -c release -Xswiftc -enable-testing).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["NBD_BENCH"] != nil))
struct NbdBenchmarkTests {
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = Date()
        try body()
        return Date().timeIntervalSince(start)
    }

    func randomFile(_ path: String) throws {
        try Tool.check("dd", ["if=/dev/urandom", "of=\(path)", "bs=1M", "count=1024", "status=none"])
    }

    /// Read (export → null:) and write (file → export), best of three, in seconds.
    func measure(uri: String, source: String) throws -> (read: Double, write: Double) {
        var read = Double.infinity, write = Double.infinity
        for _ in 0..<3 {
            read = min(read, try seconds { try Tool.check("nbdcopy", [uri, "null:"], timeout: 300) })
            write = min(write, try seconds { try Tool.check("nbdcopy", [source, uri], timeout: 300) })
        }
        return (read, write)
    }

    @Test func nbdcopyOneGiBOursVersusQemuNbd() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nbdbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("disk.raw").path
        let source = directory.appendingPathComponent("source.raw").path
        try randomFile(image)
        try randomFile(source)

        let fixture = try ExportFixture(image: image)
        let ours = try measure(uri: fixture.uri(), source: source)
        fixture.shutdown()
        print("svmm (O_DIRECT, aio=native): read \(ours.read) s, write \(ours.write) s")

        for (label, flags) in [("cache=none,aio=native", ["--cache=none", "--aio=native"]), ("default cache", [])] {
            let socket = directory.appendingPathComponent("q.sock").path
            let peer = try PeerProcess("qemu-nbd", ["-t", "-f", "raw", "-e", "0", "-k", socket, "-x", "exp"] + flags + [image])
            try peer.waitForSocket(socket)
            let qemu = try measure(uri: "nbd+unix:///exp?socket=\(socket)", source: source)
            peer.stop()
            try? FileManager.default.removeItem(atPath: socket)
            print("qemu-nbd (\(label)): read \(qemu.read) s, write \(qemu.write) s")
        }
    }
}
