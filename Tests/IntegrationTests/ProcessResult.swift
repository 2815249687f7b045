import Foundation

/// How a child process ended and what it printed.
struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String

    /// Runs `executable` to completion (killing it after `timeout` seconds, which fails the run).
    /// Output goes through files, so a chatty child can never block on a full pipe.
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> ProcessResult {
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("svmm-out-\(UUID().uuidString)")
        let errURL = directory.appendingPathComponent("svmm-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            // SIGKILL: a test runner's children may inherit SIGTERM blocked (QEMU keeps it so).
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestEnvironment.Failure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        return ProcessResult(status: process.terminationStatus,
                             stdout: try String(contentsOf: outURL, encoding: .utf8),
                             stderr: try String(contentsOf: errURL, encoding: .utf8))
    }
}
