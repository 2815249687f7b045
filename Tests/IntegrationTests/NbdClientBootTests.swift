import Foundation
import Testing

/// The tiny guest's disk is an NBD export of another process: svmm's NBD client under a real guest.
@Suite(.serialized) struct NbdClientBootTests {
    init() throws {
        try TestEnvironment.requireKVMAndImages()
        for tool in ["/usr/bin/qemu-nbd", "/usr/bin/nbdkit"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw TestEnvironment.Failure("\(tool) is missing (make deps installs qemu-utils and nbdkit)")
        }
    }

    func waitForSocket(_ path: String, _ server: BackgroundProcess) throws {
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: path) {
            guard server.process.isRunning, Date() < deadline else { throw TestEnvironment.Failure("no NBD socket: \(server.stderr)") }
            usleep(20_000)
        }
    }

    func selftest(onNbdSocket socket: String, export: String) throws -> ProcessResult {
        try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage, "-append", "mode=selftest",
            "-blockdev", "driver=nbd,node-name=d0,server.type=unix,server.path=\(socket),export=\(export)",
            "-device", "virtio-blk-device,drive=d0",
        ])
    }

    @Test func selftestPassesOnAQemuNbdExport() throws {
        let disk = try TestEnvironment.scratchDisk(size: 8 << 20)
        let socket = disk + ".sock"
        let server = try BackgroundProcess("/usr/bin/qemu-nbd", ["-f", "raw", "-x", "disk", "-k", socket, "--cache=none", disk])
        defer { server.stop() }
        try waitForSocket(socket, server)
        let result = try selftest(onNbdSocket: socket, export: "disk")
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stdout.contains("SELFTEST PASS"))
        server.stop()
        #expect(GuestPattern.firstMismatch(in: try Data(contentsOf: URL(fileURLWithPath: disk))) == nil)
    }

    @Test func selftestPassesOnNbdkitMemory() throws {
        let socket = try TestEnvironment.scratchDisk(size: 0, name: "nbdkit.sock")
        try FileManager.default.removeItem(atPath: socket)
        let server = try BackgroundProcess("/usr/bin/nbdkit", ["-f", "-U", socket, "memory", "16M"])
        defer { server.stop() }
        try waitForSocket(socket, server)
        let result = try selftest(onNbdSocket: socket, export: "")
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stdout.contains("SELFTEST PASS"))
    }

    @Test func unreachableServerIsAClearError() throws {
        let result = try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage,
            "-blockdev", "driver=nbd,node-name=d0,server.type=unix,server.path=/nonexistent/nbd.sock",
            "-device", "virtio-blk-device,drive=d0",
        ], timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("svmm: -blockdev driver=nbd,node-name=d0,server.type=unix,server.path=/nonexistent/nbd.sock: "))
    }
}
