import Glibc

/// A connected stream socket with deadline-bounded reads and writes (poll before each), so a
/// silent or stuck peer costs the caller a timeout, never a hang.
final class QmpSocket {
    let address: QmpAddress
    private var fd: Int32

    init(connectingTo address: QmpAddress, timeout: Double) throws(QmpClientError) {
        self.address = address
        switch address {
        case .unix(let path): fd = try Self.connectUnix(path, address: address, timeout: timeout)
        case .tcp(let host, let port): fd = try Self.connectTCP(host: host, port: port, timeout: timeout, address: address)
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Non-blocking, so a listener whose backlog is full (QEMU serves one QMP client at a time
    /// and listens with a backlog of 1) costs a bounded wait, not a hang: EAGAIN is retried
    /// until `timeout`.
    private static func connectUnix(_ path: String, address: QmpAddress, timeout: Double) throws(QmpClientError) -> Int32 {
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path), !bytes.contains(0) else {
            throw .unreachable(address: address.description, reason: "UNIX socket path is too long or contains NUL")
        }
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .unreachable(address: address.description, reason: errnoText()) }
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            let connected = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 { break }
            let failure = errno
            guard failure == EAGAIN, !deadline.hasPassed else {
                Glibc.close(fd)
                throw .unreachable(address: address.description, reason: failure == EAGAIN
                    ? "the monitor accepts no more clients (QEMU serves one at a time)" : String(cString: strerror(failure)))
            }
            usleep(20_000)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Tries each address getaddrinfo gives, with a non-blocking connect bounded by `timeout`.
    private static func connectTCP(host: String, port: String, timeout: Double, address: QmpAddress) throws(QmpClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &result)
        guard status == 0, result != nil else {
            throw .unreachable(address: address.description, reason: "address resolution failed: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var reason = "no address"
        var entry = result
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { reason = errnoText(); continue }
            if let failure = finishConnect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, timeout: timeout) {
                reason = failure
                Glibc.close(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return fd
        }
        throw .unreachable(address: address.description, reason: reason)
    }

    /// nil on success, else why the connection failed.
    private static func finishConnect(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, timeout: Double) -> String? {
        if connect(fd, address, length) == 0 { return nil }
        guard errno == EINPROGRESS else { return errnoText() }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&poller, 1, Self.milliseconds(timeout))
        guard ready > 0 else { return ready == 0 ? "connection timed out" : errnoText() }
        var error: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
        return error == 0 ? nil : String(cString: strerror(error))
    }

    static func milliseconds(_ seconds: Double) -> Int32 {
        guard seconds > 0 else { return 0 }
        return Int32(min(seconds * 1000, Double(Int32.max)).rounded(.up))
    }

    /// Waits up to `timeout` for bytes; returns [] on timeout, throws when the peer is gone.
    func read(timeout: Double) throws(QmpClientError) -> [UInt8] {
        guard fd >= 0 else { throw .disconnected(address: address.description, reason: "connection closed") }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Self.milliseconds(timeout))
        if ready == 0 { return [] }
        if ready < 0 {
            if errno == EINTR { return [] }
            throw .disconnected(address: address.description, reason: Self.errnoText())
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 { return Array(buffer.prefix(count)) }
        if count < 0, errno == EINTR || errno == EAGAIN { return [] }
        throw .disconnected(address: address.description, reason: count == 0 ? "end of file" : Self.errnoText())
    }

    func write(_ bytes: [UInt8]) throws(QmpClientError) {
        guard fd >= 0 else { throw .disconnected(address: address.description, reason: "connection closed") }
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { throw .disconnected(address: address.description, reason: Self.errnoText()) }
            offset += sent
        }
    }
}
