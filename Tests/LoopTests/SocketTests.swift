import Foundation
import Glibc
import Loop
import Testing

/// Loop's Socket on real unix and inet sockets: listening, connecting (every address a name
/// resolves to), accepting, and QEMU's error texts.
@Suite struct SocketTests {
    private static func temporaryPath(_ name: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loop-socket-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent(name).path
    }

    @Test func aUnixListenerGetsItsPermissionsAndAcceptsAClient() throws {
        let path = Self.temporaryPath("qmp.sock")
        let (listener, bound) = try Socket.listen(.unix(path: path), permissions: 0o600)
        defer { close(listener); unlink(path) }
        #expect(bound == .unix(path: path))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(Socket.accept(listener) == .none)
        let client = try Socket.connect(.unix(path: path))
        defer { close(client) }
        guard case .connection(let server) = Socket.accept(listener) else {
            Issue.record("no connection to accept")
            return
        }
        defer { close(server) }
        #expect(fcntl(server, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(server, F_GETFD) & FD_CLOEXEC != 0)
        #expect(write(client, "hi", 2) == 2)
        var bytes = [UInt8](repeating: 0, count: 2)
        usleep(10_000)
        #expect(read(server, &bytes, 2) == 2)
        #expect(bytes == Array("hi".utf8))
    }

    @Test func aListenerReplacesAStaleSocketFile() throws {
        let path = Self.temporaryPath("stale.sock")
        let first = try Socket.listen(.unix(path: path)).fd
        close(first)
        let second = try Socket.listen(.unix(path: path)).fd
        defer { close(second); unlink(path) }
        let client = try Socket.connect(.unix(path: path))
        close(client)
    }

    @Test func anInetListenerOnPortZeroReportsThePortTheKernelChose() throws {
        let (listener, bound) = try Socket.listen(.inet(host: "127.0.0.1", port: "0"))
        defer { close(listener) }
        guard case .inet(let host, let port) = bound, let number = UInt16(port) else {
            Issue.record("bound to \(bound)")
            return
        }
        #expect(host == "127.0.0.1")
        #expect(number > 0)
        let client = try Socket.connect(.inet(host: "127.0.0.1", port: port))
        close(client)
    }

    /// A name that resolves to ::1 and then 127.0.0.1 (this machine's hosts file has none, so the
    /// two lists are joined): with only 127.0.0.1 listening, the first address is refused and the
    /// next one connects, as QEMU's inet_connect_saddr tries them in order.
    @Test func connectTriesEveryAddressANameResolvesTo() throws {
        let (listener, bound) = try Socket.listen(.inet(host: "127.0.0.1", port: "0"))
        defer { close(listener) }
        guard case .inet(_, let port) = bound else { return }
        let candidates = try Socket.resolve(host: "::1", port: port, passive: false)
            + Socket.resolve(host: "127.0.0.1", port: port, passive: false)
        #expect(candidates.map(\.family) == [AF_INET6, AF_INET])
        let client = try Socket.connect(toFirstOf: candidates, host: "both", port: port)
        close(client)
        #expect(throws: SocketError("Failed to connect to 'both:\(port)': Connection refused", errno: ECONNREFUSED)) {
            try Socket.connect(toFirstOf: Array(candidates.prefix(1)), host: "both", port: port)
        }
    }

    @Test func errorsAreQemusTexts() throws {
        let missing = Self.temporaryPath("no/such/dir.sock")
        #expect(throws: SocketError("Failed to bind socket to \(missing): No such file or directory", errno: ENOENT)) {
            try Socket.listen(.unix(path: missing))
        }
        #expect(throws: SocketError("Failed to connect to '\(missing)': No such file or directory", errno: ENOENT)) {
            try Socket.connect(.unix(path: missing))
        }
        let long = "/tmp/" + String(repeating: "a", count: 120)
        #expect(throws: SocketError("UNIX socket path '\(long)' is too long", errno: EINVAL)) {
            try Socket.listen(.unix(path: long))
        }
        #expect(throws: SocketError("address resolution failed for nosuchhost.invalid:5: Name or service not known", errno: EINVAL)) {
            try Socket.connect(.inet(host: "nosuchhost.invalid", port: "5"))
        }
        let (listener, bound) = try Socket.listen(.inet(host: "127.0.0.1", port: "0"))
        defer { close(listener) }
        guard case .inet(_, let port) = bound else { return }
        #expect(throws: SocketError("Failed to find an available port: Address already in use", errno: EADDRINUSE)) {
            try Socket.listen(.inet(host: "127.0.0.1", port: port))
        }
    }

    /// QEMU's qio_net_listener_open_sync: no host is every address, IPv4 and IPv6 on one port
    /// (the IPv6 socket made IPv6-only when the IPv4 one holds the port), each listener reporting
    /// its numeric address and family; a client on either family is taken by waitForConnection,
    /// blocking and close-on-exec.
    @Test func listenAllListensOnEveryAddressAndWaitForConnectionTakesEither() throws {
        let probe = try Socket.listen(.inet(host: "127.0.0.1", port: "0"))
        guard case .inet(_, let port) = probe.bound else { return }
        close(probe.fd)
        let listeners = try Socket.listenAll(.inet(host: "", port: port))
        defer { listeners.forEach { close($0.fd) } }
        #expect(Set(listeners.map(\.bound.family)) == [.ipv4, .ipv6])
        #expect(Set(listeners.map(\.bound.address)) == [.inet(host: "0.0.0.0", port: port), .inet(host: "::", port: port)])
        for host in ["127.0.0.1", "::1"] {
            let client = try Socket.connect(.inet(host: host, port: port))
            defer { close(client) }
            let server = try Socket.waitForConnection(on: listeners.map(\.fd))
            defer { close(server) }
            #expect(fcntl(server, F_GETFL) & O_NONBLOCK == 0)
            #expect(fcntl(server, F_GETFD) & FD_CLOEXEC != 0)
            #expect(write(client, "m", 1) == 1)
            var byte: UInt8 = 0
            #expect(read(server, &byte, 1) == 1 && byte == UInt8(ascii: "m"))
        }
    }

    @Test func listenAllReportsTheKernelsPortAndFailsWithTheFirstError() throws {
        let listeners = try Socket.listenAll(.inet(host: "127.0.0.1", port: "0"))
        defer { listeners.forEach { close($0.fd) } }
        guard listeners.count == 1, case .inet(let host, let port) = listeners[0].bound.address else {
            Issue.record("listeners \(listeners)")
            return
        }
        #expect(host == "127.0.0.1" && UInt16(port).map { $0 > 0 } == true && listeners[0].bound.family == .ipv4)
        #expect(throws: SocketError("Failed to find an available port: Address already in use", errno: EADDRINUSE)) {
            try Socket.listenAll(.inet(host: "127.0.0.1", port: port))
        }
        let path = Self.temporaryPath("in.sock")
        let unix = try Socket.listenAll(.unix(path: path), permissions: 0o600)
        defer { unix.forEach { close($0.fd) }; unlink(path) }
        #expect(unix.map(\.bound) == [BoundSocketAddress(address: .unix(path: path), family: .unix)])
    }

    /// A path that fills sun_path exactly (108 bytes, no NUL) is a path, as in QEMU; one more is too long.
    @Test func aUnixPathMayFillSunPath() throws {
        let directory = (Self.temporaryPath("x") as NSString).deletingLastPathComponent + "/"
        let path = directory + String(repeating: "p", count: 108 - directory.utf8.count)
        let listener = try Socket.listen(.unix(path: path)).fd
        defer { close(listener); unlink(path) }
        close(try Socket.connect(.unix(path: path)))
        #expect(throws: SocketError("UNIX socket path '\(path)p' is too long", errno: EINVAL)) { try Socket.connect(.unix(path: path + "p")) }
    }

    /// An empty host is no name to connect to (QEMU passes it to getaddrinfo, which refuses it).
    @Test func anEmptyHostDoesNotResolveForConnect() {
        #expect(throws: SocketError("address resolution failed for :5: Name or service not known", errno: EINVAL)) {
            try Socket.connect(.inet(host: "", port: "5"))
        }
    }
}
