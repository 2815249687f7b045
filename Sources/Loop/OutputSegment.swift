import Glibc

/// A piece of an outgoing message: memory that stays valid until `release` runs after it is sent
/// (or dropped).
public struct OutputSegment {
    public let base: UnsafeRawPointer
    public let count: Int
    public let release: (() -> Void)?

    public init(base: UnsafeRawPointer, count: Int, release: (() -> Void)?) {
        self.base = base
        self.count = count
        self.release = release
    }

    /// A private copy of `bytes`.
    public static func bytes(_ bytes: [UInt8]) -> OutputSegment {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0) }
        return OutputSegment(base: UnsafeRawPointer(copy.baseAddress!), count: bytes.count, release: copy.deallocate)
    }
}
