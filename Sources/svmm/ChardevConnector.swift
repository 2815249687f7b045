import Block
import Glibc
import Machine

/// Opens the client side of a `-chardev socket` (no `server=on`), as QEMU's qmp_chardev_open_socket
/// does at start-up, before the machine is built: the qemu-iotests harness listens and waits for it.
enum ChardevConnector {
    struct Failure: Error {
        let message: String
    }

    /// A connected, non-blocking, close-on-exec socket.
    static func open(_ client: MachineConfig.ChardevClient) throws(Failure) -> Int32 {
        let fd: Int32
        switch client.connection {
        case .inheritedFd(let inherited): fd = try checkSocket(inherited)
        case .connect(.unix(let path)): fd = try connectUnix(path)
        case .connect(.inet(let host, let port)): fd = try connectTCP(host: host, port: port)
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    private static func checkSocket(_ fd: Int32) throws(Failure) -> Int32 {
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else {
            throw Failure(message: "File descriptor '\(fd)' is not a socket")
        }
        return fd
    }

    private static func connectUnix(_ path: String) throws(Failure) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path), !bytes.contains(0) else {
            throw Failure(message: "UNIX socket path '\(path)' is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(message: "Failed to create socket: \(String(cString: strerror(errno)))") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(message: "Failed to connect to '\(path)': \(reason)")
        }
        return fd
    }

    private static func connectTCP(host: String, port: String) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &result)
        guard status == 0, let first = result else {
            throw Failure(message: "address resolution failed for \(host):\(port): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var reason = "Connection refused"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd >= 0 {
                if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
                reason = String(cString: strerror(errno))
                close(fd)
            }
            entry = info.pointee.ai_next
        }
        throw Failure(message: "Failed to connect to '\(host):\(port)': \(reason)")
    }
}
