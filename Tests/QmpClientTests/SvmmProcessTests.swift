import Foundation
import QmpClient
import QmpJSON
import Testing

/// The client against a real svmm process (the idle guest, paused with -S): negotiation,
/// commands, QEMU's error classes, events, and the end of the connection at `quit`.
@Suite struct SvmmProcessTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private static func path(_ variable: String, _ fallback: String) -> String {
        ProcessInfo.processInfo.environment[variable] ?? packageRoot.appendingPathComponent(fallback).path
    }

    /// Fails (never skips) when KVM, svmm or the guest is missing.
    private func startSvmm(socket: String) throws -> Process {
        let svmm = Self.path("SVMM_BIN", ".build/debug/svmm")
        let guest = Self.path("GUEST_ELF", "guest-images/out/blkguest.elf")
        for needed in ["/dev/kvm", svmm, guest] where !FileManager.default.fileExists(atPath: needed) {
            throw POSIXError(.ENOENT, userInfo: [NSLocalizedDescriptionKey: "\(needed) is missing: run `make test`"])
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: svmm)
        process.arguments = ["-m", "64M", "-serial", "none", "-S", "-kernel", guest, "-append", "mode=idle",
                             "-qmp", "unix:\(socket),server=on,wait=off",
                             "-blockdev", "driver=null-co,node-name=n0", "-device", "virtio-blk-device,drive=n0,id=vblk0"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: socket) {
            guard process.isRunning, Date() < deadline else {
                process.terminate()
                throw POSIXError(.ETIMEDOUT, userInfo: [NSLocalizedDescriptionKey: "svmm made no QMP socket"])
            }
            usleep(20_000)
        }
        return process
    }

    @Test func drivesARealSvmm() throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-\(UUID().uuidString.prefix(8)).qmp").path
        let process = try startSvmm(socket: socket)
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            unlink(socket)
        }
        let client = try QmpClient(connectingTo: .unix(path: socket), timeout: 10)
        #expect(client.version == "7.2.0")
        #expect(try client.execute("query-status")["status"] == .string("prelaunch"))
        let backends = try client.execute("x-svmm-query-backends").arrayValue ?? []
        #expect(backends.count == 1 && backends.first?["device"] == .string("vblk0") && backends.first?["applied"] == .bool(true))
        #expect(throws: QmpClientError.commandFailed(command: "blockdev-del", errorClass: "GenericError",
                                                     desc: "Failed to find node with node-name='nosuch'")) {
            try client.execute("blockdev-del", .members(["node-name": .string("nosuch")]))
        }
        try client.execute("cont")
        #expect(try client.waitForEvent("RESUME", timeout: 10).timestamp > 0)
        #expect(try client.execute("query-status")["running"]?.boolValue == true)
        try client.execute("quit")
        #expect(try client.waitForEvent("SHUTDOWN", timeout: 10).data["reason"] == .string("host-qmp-quit"))
        // End of file, or a reset if the request was written after svmm closed.
        do {
            try client.execute("query-status", timeout: 10)
            Issue.record("svmm answered after quit")
        } catch {
            guard case .disconnected(let address, _) = error else { Issue.record("\(error)"); return }
            #expect(address == "unix:\(socket)")
        }
    }
}
