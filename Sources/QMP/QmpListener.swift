import Block
import CKVM
import Glibc

/// A listening QMP socket (`-qmp unix:PATH,server=on,wait=off` or `tcp:HOST:PORT`).
final class QmpListener {
    let fd: Int32

    init(address: SocketAddress) throws(QmpError) {
        switch address {
        case .unix(let path): fd = try Self.listenUnix(path)
        case .inet(let host, let port): fd = try Self.listenTCP(host: host, port: port)
        }
    }

    private static func listenUnix(_ path: String) throws(QmpError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw QmpError("Failed to create socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            close(fd)
            throw QmpError("UNIX socket path '\(path)' is too long")
        }
        // Bound and listening under a staging name first, then renamed: a client that sees the
        // file can connect at once (no window between bind and listen that answers ECONNREFUSED).
        let staging = path + ".\(getpid()).listening"
        let bindPath = staging.utf8.count < capacity ? staging : path
        let bytes = Array(bindPath.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        unlink(path)
        unlink(bindPath)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(bindPath, 0o600) == 0, listen(fd, 16) == 0,
              bindPath == path || rename(bindPath, path) == 0 else {
            let message = String(cString: strerror(errno))
            if bound == 0 { unlink(bindPath) }
            close(fd)
            throw QmpError("Failed to bind socket to \(path): \(message)")
        }
        return fd
    }

    private static func listenTCP(host: String, port: String) throws(QmpError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &result) == 0, let info = result else {
            throw QmpError("address resolution failed for \(host):\(port)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw QmpError("Failed to create socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw QmpError("Failed to bind socket: \(message)")
        }
        return fd
    }

    /// Takes every pending connection; `outOfDescriptors` when one is left waiting because the
    /// process has no file descriptor for it (it stays readable, so it must not be watched).
    func acceptAll() -> (clients: [Int32], outOfDescriptors: Bool) {
        var clients: [Int32] = []
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return (clients, errno == EMFILE || errno == ENFILE) }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            clients.append(client)
        }
    }
}
