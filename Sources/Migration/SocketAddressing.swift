import CKVM
import Glibc

/// Blocking connect and listen for `unix:` and `tcp:` migration URIs, with QEMU's error texts
/// (util/qemu-sockets.c).
enum SocketAddressing {
    private static let streamType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)

    private static func unixAddress(_ path: String) throws(MigrationError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw MigrationError("UNIX socket path '\(path)' is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    static func connectUnix(_ path: String) throws(MigrationError) -> Int32 {
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, streamType, 0)
        guard fd >= 0 else { throw MigrationError("Failed to create socket: \(errorText())") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let message = errorText()
            close(fd)
            throw MigrationError("Failed to connect to '\(path)': \(message)")
        }
        return fd
    }

    private static func resolve(host: String, port: String, passive: Bool) throws(MigrationError) -> UnsafeMutablePointer<addrinfo> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        if passive { hints.ai_flags = AI_PASSIVE }
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &result)
        guard status == 0, let info = result else {
            throw MigrationError("address resolution failed for \(host):\(port): \(String(cString: gai_strerror(status)))")
        }
        return info
    }

    static func connectTCP(host: String, port: String) throws(MigrationError) -> Int32 {
        let info = try resolve(host: host, port: port, passive: false)
        defer { freeaddrinfo(info) }
        var lastError = ECONNREFUSED
        var entry: UnsafeMutablePointer<addrinfo>? = info
        while let current = entry {
            let fd = socket(current.pointee.ai_family, streamType, 0)
            if fd >= 0 {
                if Glibc.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return fd
                }
                lastError = errno
                close(fd)
            }
            entry = current.pointee.ai_next
        }
        throw MigrationError("Failed to connect to '\(host):\(port)': \(String(cString: strerror(lastError)))")
    }

    static func listenUnix(_ path: String) throws(MigrationError) -> Int32 {
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, streamType, 0)
        guard fd >= 0 else { throw MigrationError("Failed to create socket: \(errorText())") }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // Only the owner may connect, as the QMP and NBD sockets: chmod before listen.
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 1) == 0 else {
            let message = errorText()
            close(fd)
            throw MigrationError("Failed to bind socket to \(path): \(message)")
        }
        return fd
    }

    static func listenTCP(host: String, port: String) throws(MigrationError) -> Int32 {
        let info = try resolve(host: host, port: port, passive: true)
        defer { freeaddrinfo(info) }
        let fd = socket(info.pointee.ai_family, streamType, 0)
        guard fd >= 0 else { throw MigrationError("Failed to create socket: \(errorText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 1) == 0 else {
            let message = errorText()
            close(fd)
            throw MigrationError("Failed to bind socket: \(message)")
        }
        return fd
    }

    /// Waits for the one connection an incoming migration takes; the listener is closed after it.
    static func acceptOne(_ listener: Int32) throws(MigrationError) -> Int32 {
        while true {
            let fd = accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return fd
            }
            if errno == EINTR { continue }
            throw MigrationError("Failed to accept the migration connection: \(errorText())")
        }
    }
}
