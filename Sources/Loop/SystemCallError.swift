import CKVM
import Glibc

/// An error from a system call (or a KVM ioctl), naming the call and the errno, e.g.
/// `ioctl KVM_SET_USER_MEMORY_REGION: EINVAL` or `epoll_ctl ADD fd 7: EBADF`.
/// KVM calls it `KvmError`; the layers above wrap it in their own errors.
public struct SystemCallError: KindedError, Equatable {
    public let operation: String
    public let errno: Int32
    /// `.kvmMissingCap` when KVM lacks a capability svmm needs; else generic.
    public let kind: ErrorKind

    public init(_ operation: String, errno: Int32 = Glibc.errno, kind: ErrorKind = .generic) {
        self.operation = operation
        self.errno = errno
        self.kind = kind
    }

    public var description: String { "\(operation): \(ErrnoName.of(errno))" }
}
