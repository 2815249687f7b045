import Foundation

/// A server peer running in the background (qemu-nbd, nbdkit), killed when the test ends.
final class PeerProcess {
    private let process = Process()

    init(_ name: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try Tool.path(name))
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit { stop() }

    /// Waits until a unix socket exists or a TCP port accepts.
    func waitForSocket(_ path: String) throws {
        try wait { FileManager.default.fileExists(atPath: path) }
    }

    func waitForPort(_ port: Int) throws {
        try wait { RawPeer.canConnect(port: port) }
    }

    private func wait(_ ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(15)
        while !ready() {
            guard process.isRunning else { throw TestFailure("peer exited with \(process.terminationStatus)") }
            guard Date() < deadline else { throw TestFailure("peer did not start listening") }
            usleep(20_000)
        }
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A TCP port nobody listens on right now.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
