import CKVM
import Glibc

/// An error from a KVM or system call, naming the call and the errno, e.g.
/// `ioctl KVM_SET_USER_MEMORY_REGION: EINVAL`.
public struct KvmError: Error, CustomStringConvertible, Equatable {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(ErrnoName.of(errno))" }
}

/// Symbolic errno names (`EINVAL`), as kernel developers read them.
public enum ErrnoName {
    public static func of(_ code: Int32) -> String {
        if let name = strerrorname_np(code) { return String(cString: name) }
        return "errno \(code)"
    }
}
