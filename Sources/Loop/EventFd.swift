import CKVM
import Glibc

/// A Linux eventfd: a counter the kernel (ioeventfd, irqfd, libaio) and threads signal each other with.
public final class EventFd: Sendable {
    public let fd: Int32

    public init(nonBlocking: Bool = true) throws(SystemCallError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC) | (nonBlocking ? Int32(EFD_NONBLOCK) : 0))
        if fd < 0 { throw SystemCallError("eventfd") }
        self.fd = fd
    }

    deinit { close(fd) }

    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }
}
