import Glibc

/// Opening stream sockets on unix and inet addresses, with QEMU's (util/qemu-sockets.c) error
/// texts: what the NBD server and client, the QMP monitor and (next) migration share.
public enum Socket {
    /// A listening, non-blocking socket bound exactly to `address`, and the address it got (port 0
    /// becomes the port the kernel chose). A unix socket gets `permissions` (QMP's 0600) before
    /// anyone can connect: it is bound and listening under a staging name first, then renamed, so
    /// a client that sees the file can connect at once (no window that answers ECONNREFUSED).
    public static func listen(_ address: SocketAddress, permissions: mode_t? = nil) throws(SocketError) -> (fd: Int32, bound: SocketAddress) {
        switch address {
        case .unix(let path): return (try listenUnix(path, permissions: permissions), address)
        case .inet(let host, let port): return try listenInet(host: host, port: port)
        }
    }

    /// A connected, blocking socket; for inet, every address the name resolves to is tried in
    /// order until one connects (QEMU's inet_connect_saddr), and replies go out at once (TCP_NODELAY).
    public static func connect(_ address: SocketAddress) throws(SocketError) -> Int32 {
        switch address {
        case .unix(let path): return try connectUnix(path)
        case .inet(let host, let port): return try connectInet(host: host, port: port)
        }
    }

    /// Listening sockets on every address `address` resolves to, as QEMU's
    /// qio_net_listener_open_sync does for migration, chardevs and NBD (`tcp::4444` listens on
    /// 0.0.0.0 and on ::), each with the numeric address it got. Fails only if none listens, with
    /// the first address's failure.
    public static func listenAll(_ address: SocketAddress, permissions: mode_t? = nil) throws(SocketError) -> [(fd: Int32, bound: BoundSocketAddress)] {
        switch address {
        case .unix(let path):
            return [(try listenUnix(path, permissions: permissions), BoundSocketAddress(address: address, family: .unix))]
        case .inet(let host, let port):
            var listeners: [(fd: Int32, bound: BoundSocketAddress)] = []
            var firstError: SocketError?
            for candidate in try resolve(host: host, port: port, passive: true) {
                do throws(SocketError) {
                    let fd = try listen(on: candidate)
                    listeners.append((fd, boundAddress(fd)))
                } catch {
                    if firstError == nil { firstError = error }
                }
            }
            if let firstError, listeners.isEmpty { throw firstError }
            return listeners
        }
    }

    /// Blocks until one of `listeners` has a connection and returns it: blocking (accept(2) on
    /// Linux does not inherit O_NONBLOCK), close-on-exec, TCP_NODELAY. For a thread that waits
    /// off the loop (the incoming migration; QEMU's qio_net_listener_wait_client).
    public static func waitForConnection(on listeners: [Int32]) throws(SocketError) -> Int32 {
        var descriptors = listeners.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        while true {
            if poll(&descriptors, nfds_t(descriptors.count), -1) < 0 {
                if errno == EINTR { continue }
                throw .posix("Unable to poll for connections", errno: errno)
            }
            for descriptor in descriptors where descriptor.revents != 0 {
                let fd = Glibc.accept(descriptor.fd, nil, nil)
                if fd >= 0 {
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                    setNoDelay(fd)
                    return fd
                }
                // Gone before it was taken, or another waiter took it: wait again.
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED { continue }
                throw .posix("Unable to accept connection", errno: errno)
            }
        }
    }

    /// The next pending connection, non-blocking and close-on-exec.
    public static func accept(_ listener: Int32) -> SocketAcceptResult {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return errno == EMFILE || errno == ENFILE ? .outOfDescriptors : .none }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        setNonBlocking(fd)
        setNoDelay(fd)
        return .connection(fd)
    }

    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// Replies go out as soon as they are written (QEMU: qio_channel_set_delay(false)); a no-op
    /// on a unix socket.
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: unix

    private static func unixAddress(_ path: String) throws(SocketError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        // QEMU (unix_listen_saddr, unix_connect_saddr) takes a path that fills sun_path exactly,
        // with no NUL after it: the address length says where it ends.
        guard bytes.count <= MemoryLayout.size(ofValue: address.sun_path) else {
            throw SocketError("UNIX socket path '\(path)' is too long", errno: EINVAL)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    private static func withUnixAddress(_ address: sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    private static func listenUnix(_ path: String, permissions: mode_t?) throws(SocketError) -> Int32 {
        _ = try unixAddress(path)
        let staging = path + ".\(getpid()).listening"
        let bindPath = (try? unixAddress(staging)) != nil ? staging : path
        let address = try unixAddress(bindPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketError.posix("Failed to create Unix socket", errno: errno) }
        if bindPath != path { unlink(bindPath) }
        if unlink(path) < 0 && errno != ENOENT {
            let error = SocketError.posix("Failed to unlink socket \(path)", errno: errno)
            close(fd)
            throw error
        }
        guard withUnixAddress(address, { bind(fd, $0, $1) }) == 0 else {
            let error = SocketError.posix("Failed to bind socket to \(path)", errno: errno)
            close(fd)
            throw error
        }
        var failure: SocketError?
        if let permissions, chmod(bindPath, permissions) != 0 {
            failure = .posix("Failed to bind socket to \(path)", errno: errno)
        } else if Glibc.listen(fd, 16) != 0 {
            failure = .posix("Failed to listen on socket", errno: errno)
        } else if bindPath != path && rename(bindPath, path) != 0 {
            failure = .posix("Failed to bind socket to \(path)", errno: errno)
        }
        if let failure {
            unlink(bindPath)
            close(fd)
            throw failure
        }
        return fd
    }

    private static func connectUnix(_ path: String) throws(SocketError) -> Int32 {
        let address = try unixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.posix("Failed to create socket", errno: errno) }
        guard withUnixAddress(address, { Glibc.connect(fd, $0, $1) }) == 0 else {
            let error = SocketError.posix("Failed to connect to '\(path)'", errno: errno)
            close(fd)
            throw error
        }
        return fd
    }

    // MARK: inet

    /// One address getaddrinfo gave: what `socket` and `bind`/`connect` take.
    package typealias Candidate = (family: Int32, type: Int32, proto: Int32, address: [UInt8])

    /// Every address `host` resolves to, in getaddrinfo's order.
    package static func resolve(host: String, port: String, passive: Bool) throws(SocketError) -> [Candidate] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        // An empty host is "any address" to listen on, but no name to connect to (QEMU passes it
        // to getaddrinfo, which refuses it: `address resolution failed for :4444`).
        let status = getaddrinfo(host.isEmpty && passive ? nil : host, port, &hints, &list)
        guard status == 0 else {
            throw SocketError("address resolution failed for \(host):\(port): \(String(cString: gai_strerror(status)))", errno: EINVAL)
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

    /// The first address that binds and listens (QEMU's inet_listen_saddr).
    private static func listenInet(host: String, port: String) throws(SocketError) -> (fd: Int32, bound: SocketAddress) {
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
        throw SocketError.posix("Failed to find an available port", errno: lastError)
    }

    /// One numeric address, as QEMU's inet_listen_saddr binds it: SO_REUSEADDR, and an IPv6
    /// socket dual-stack unless the IPv4 port is taken already, then IPv6 only (try_bind), so
    /// that `::` and `0.0.0.0` both listen.
    private static func listen(on candidate: Candidate) throws(SocketError) -> Int32 {
        let fd = socket(candidate.family, candidate.type | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), candidate.proto)
        guard fd >= 0 else { throw .posix("Failed to create socket", errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bound = false
        for v6only: Int32 in [0, 1] {
            if candidate.family == AF_INET6 {
                var flag = v6only
                _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &flag, socklen_t(MemoryLayout<Int32>.size))
            }
            if withAddress(candidate, { bind(fd, $0, $1) }) == 0 { bound = true; break }
            if candidate.family != AF_INET6 || errno != EADDRINUSE { break }
        }
        guard bound else {
            let error = SocketError.posix("Failed to find an available port", errno: errno)
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, 16) == 0 else {
            let error = SocketError.posix("Failed to listen on socket", errno: errno)
            close(fd)
            throw error
        }
        return fd
    }

    /// getsockname as a numeric host and port (NI_NUMERICHOST) with the family.
    private static func boundAddress(_ fd: Int32) -> BoundSocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var host = [CChar](repeating: 0, count: 1025)  // NI_MAXHOST
        var service = [CChar](repeating: 0, count: 32)  // NI_MAXSERV
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                getsockname(fd, address, &length) == 0
                    ? getnameinfo(address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                                  NI_NUMERICHOST | NI_NUMERICSERV)
                    : -1
            }
        }
        let family: SocketFamily = storage.ss_family == sa_family_t(AF_INET6) ? .ipv6 : .ipv4
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return BoundSocketAddress(address: .inet(host: text(host), port: text(service)), family: family)
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

    private static func connectInet(host: String, port: String) throws(SocketError) -> Int32 {
        try connect(toFirstOf: try resolve(host: host, port: port, passive: false), host: host, port: port)
    }

    /// Tries `candidates` in order; the first that connects wins, else the last error is reported.
    package static func connect(toFirstOf candidates: [Candidate], host: String, port: String) throws(SocketError) -> Int32 {
        var lastError = ECONNREFUSED
        for candidate in candidates {
            let fd = socket(candidate.family, candidate.type | Int32(SOCK_CLOEXEC.rawValue), candidate.proto)
            guard fd >= 0 else { lastError = errno; continue }
            if withAddress(candidate, { Glibc.connect(fd, $0, $1) }) == 0 {
                setNoDelay(fd)
                return fd
            }
            lastError = errno
            close(fd)
        }
        throw SocketError.posix("Failed to connect to '\(host):\(port)'", errno: lastError)
    }
}
