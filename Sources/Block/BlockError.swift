import Glibc

/// A block-layer error. `description` is the user-facing text, in QEMU's words where QEMU has them.
public struct BlockError: KindedError, Equatable {
    public let description: String
    /// The errno a guest-visible request failed with, when there is one.
    public let errno: Int32
    /// What QMP reports as the error class (QEMU's ErrorClass); most errors are generic.
    public let kind: BlockErrorKind

    public init(_ description: String, errno: Int32 = EIO, kind: BlockErrorKind = .generic) {
        self.description = description
        self.errno = errno
        self.kind = kind
    }

    public static func posix(_ what: String, errno code: Int32) -> BlockError {
        BlockError("\(what): \(String(cString: strerror(code)))", errno: code)
    }
}
