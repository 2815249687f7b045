import Foundation

/// A long-running child (an svmm guest in `mode=idle`, a QEMU peer) with its output in files.
final class BackgroundProcess {
    let process = Process()
    let outURL: URL
    let errURL: URL

    init(_ executable: String, _ arguments: [String]) throws {
        let directory = FileManager.default.temporaryDirectory
        outURL = directory.appendingPathComponent("bg-out-\(UUID().uuidString)")
        errURL = directory.appendingPathComponent("bg-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit { stop() }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// Waits until stdout contains `text`; fails if the process ends or time runs out first.
    func waitForOutput(_ text: String, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !stdout.contains(text) {
            guard process.isRunning else {
                throw TestEnvironment.Failure("process exited (\(process.terminationStatus)) before printing '\(text)': \(stdout) \(stderr)")
            }
            guard Date() < deadline else { throw TestEnvironment.Failure("no '\(text)' within \(timeout) s: \(stdout)") }
            usleep(20_000)
        }
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: a test runner's children may inherit SIGTERM blocked (QEMU keeps it so).
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
}
