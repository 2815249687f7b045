import Foundation

/// Runs Debian's NBD peers (qemu-img, qemu-io, nbdinfo, nbdcopy); a missing tool fails the test.
enum Tool {
    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static let packages = [
        "qemu-img": "qemu-utils", "qemu-io": "qemu-utils", "qemu-nbd": "qemu-utils",
        "nbdinfo": "libnbd-bin", "nbdcopy": "libnbd-bin", "nbdkit": "nbdkit", "dd": "coreutils",
    ]

    static func path(_ name: String) throws -> String {
        let path = "/usr/bin/\(name)"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(name) is missing: apt-get install -y \(packages[name] ?? name)")
        }
        return path
    }

    /// Runs to completion (killed after `timeout` seconds).
    @discardableResult
    static func run(_ name: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(name))
        process.arguments = arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("nbdtool-\(UUID().uuidString)")
        let err = out.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestFailure("\(name) \(arguments) timed out")
        }
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Runs and requires exit status 0.
    @discardableResult
    static func check(_ name: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> Output {
        let output = try run(name, arguments, timeout: timeout)
        guard output.status == 0 else {
            throw TestFailure("\(name) \(arguments.joined(separator: " ")) failed (\(output.status)): \(output.stderr) \(output.stdout)")
        }
        return output
    }

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }
}
