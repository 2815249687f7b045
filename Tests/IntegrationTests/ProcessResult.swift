import Foundation

/// How a child process ended and what it printed.
struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String

    /// Runs `executable` to completion (killing it after `timeout` seconds, which fails the run).
    /// Output goes through files, so a chatty child can never block on a full pipe.
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> ProcessResult {
        let child = try BackgroundProcess(executable, arguments)
        defer { child.stop() }
        let deadline = Date().addingTimeInterval(timeout)
        while child.process.isRunning && Date() < deadline { usleep(10_000) }
        guard !child.process.isRunning else {
            throw TestEnvironment.Failure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        return ProcessResult(status: child.process.terminationStatus, stdout: child.stdout, stderr: child.stderr)
    }
}
