import Block
import Glibc

/// Opening NBD sockets, with QEMU's (util/qemu-sockets.c) error messages.
enum NbdSocket {
    /// A listening, non-blocking socket bound exactly to `address`, and the address it got
    /// (port 0 becomes the port the kernel chose).
    static func listen(_ address: SocketAddress) throws(BlockError) -> (fd: Int32, bound: SocketAddress) {
        switch address {
        case .unix(let path): return (try listenUnix(path), address)
        case .inet(let host, let port): return try listenInet(host: host, port: port)
        }
    }

    /// A connected, blocking socket.
    static func connect(_ address: SocketAddress) throws(BlockError) -> Int32 {
        switch address {
        case .unix(let path): return try connectUnix(path)
        case .inet(let host, let port): return try connectInet(host: host, port: port)
        }
    }

    /// The next pending connection, non-blocking, or nil when there is none.
    static func accept(_ listener: Int32) -> Int32? {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        setNonBlocking(fd)
        setNoDelay(fd)
        return fd
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Replies go out as soon as they are written (QEMU: qio_channel_set_delay(false)).
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: unix

    private static func unixAddress(_ path: String) throws(BlockError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw BlockError("UNIX socket path '\(path)' is too long", errno: EINVAL)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    private static func listenUnix(_ path: String) throws(BlockError) -> Int32 {
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw BlockError.posix("Failed to create Unix socket", errno: errno) }
        if unlink(path) < 0 && errno != ENOENT {
            let error = BlockError.posix("Failed to unlink socket \(path)", errno: errno)
            close(fd)
            throw error
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        // Only the owner may connect (issue 16): chmod before listen, so no one connects earlier.
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(fd, 16) == 0 else {
            let error = BlockError.posix("Failed to bind socket to \(path)", errno: errno)
            close(fd)
            throw error
        }
        return fd
    }

    private static func connectUnix(_ path: String) throws(BlockError) -> Int32 {
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BlockError.posix("Failed to create socket", errno: errno) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let error = BlockError.posix("Failed to connect to '\(path)'", errno: errno)
            close(fd)
            throw error
        }
        return fd
    }

    // MARK: inet

    typealias Candidate = (family: Int32, type: Int32, proto: Int32, address: [UInt8])

    private static func resolve(host: String, port: String, passive: Bool) throws(BlockError) -> [Candidate] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, port, &hints, &list)
        guard status == 0 else {
            throw BlockError("address resolution failed for \(host):\(port): \(String(cString: gai_strerror(status)))", errno: EINVAL)
        }
        defer { freeaddrinfo(list) }
        var result: [Candidate] = []
        var entry = list
        while let info = entry?.pointee {
            let address = Array(UnsafeRawBufferPointer(start: info.ai_addr, count: Int(info.ai_addrlen)))
            result.append((info.ai_family, info.ai_socktype, info.ai_protocol, address))
            entry = info.ai_next
        }
        return result
    }

    /// Calls bind or connect with the candidate's address.
    private static func withAddress(_ candidate: Candidate, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        candidate.address.withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count)) }
    }

    private static func listenInet(host: String, port: String) throws(BlockError) -> (fd: Int32, bound: SocketAddress) {
        var lastError = EADDRNOTAVAIL
        for candidate in try resolve(host: host, port: port, passive: true) {
            let fd = socket(candidate.family, candidate.type | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), candidate.proto)
            guard fd >= 0 else { lastError = errno; continue }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if withAddress(candidate, { bind(fd, $0, $1) }) == 0, Glibc.listen(fd, 16) == 0 {
                return (fd, .inet(host: host, port: String(boundPort(fd))))
            }
            lastError = errno
            close(fd)
        }
        throw BlockError.posix("Failed to find an available port", errno: lastError)
    }

    private static func boundPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    private static func connectInet(host: String, port: String) throws(BlockError) -> Int32 {
        var lastError = ECONNREFUSED
        for candidate in try resolve(host: host, port: port, passive: false) {
            let fd = socket(candidate.family, candidate.type | Int32(SOCK_CLOEXEC.rawValue), candidate.proto)
            guard fd >= 0 else { lastError = errno; continue }
            if withAddress(candidate, { Glibc.connect(fd, $0, $1) }) == 0 {
                setNoDelay(fd)
                return fd
            }
            lastError = errno
            close(fd)
        }
        throw BlockError.posix("Failed to connect to '\(host):\(port)'", errno: lastError)
    }
}
