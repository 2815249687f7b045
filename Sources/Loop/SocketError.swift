import Glibc

/// A socket that could not be opened, bound or connected, in QEMU's words (util/qemu-sockets.c:
/// `Failed to bind socket to PATH: No such file or directory`), with the errno under it.
public struct SocketError: KindedError, Equatable {
    public let description: String
    public let errno: Int32
    public var kind: ErrorKind { .generic }

    public init(_ description: String, errno: Int32 = EINVAL) {
        self.description = description
        self.errno = errno
    }

    /// QEMU's error_setg_errno: the message, then the errno's text.
    static func posix(_ what: String, errno code: Int32) -> SocketError {
        SocketError("\(what): \(String(cString: strerror(code)))", errno: code)
    }
}
