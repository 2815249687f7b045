import Glibc

/// A piece of an outgoing message: memory that stays valid until `release` runs after it is sent
/// (or dropped).
struct OutputSegment {
    let base: UnsafeRawPointer
    let count: Int
    let release: (() -> Void)?

    init(base: UnsafeRawPointer, count: Int, release: (() -> Void)?) {
        self.base = base
        self.count = count
        self.release = release
    }

    /// A private copy of `bytes`.
    static func bytes(_ bytes: [UInt8]) -> OutputSegment {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0) }
        return OutputSegment(base: UnsafeRawPointer(copy.baseAddress!), count: bytes.count, release: copy.deallocate)
    }
}
