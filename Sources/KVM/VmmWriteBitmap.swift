import CKVM
import Synchronization

/// The guest pages svmm itself wrote while dirty tracking is on (virtio-blk read data, used rings,
/// status bytes): KVM's dirty log only sees the guest's own writes. One bit per 4 KiB page.
/// The event loop marks (after the bytes are in memory, with release ordering), the migration
/// sender takes and clears words (with acquire ordering) on its own thread, so a page whose bit it
/// took is read with the bytes that set it, and a page written later is marked again. When
/// tracking is off, marking costs one relaxed load and a branch.
public final class VmmWriteBitmap: @unchecked Sendable {  // words are only touched with C11 atomics
    public let pageCount: Int
    private let words: UnsafeMutablePointer<UInt64>
    private let wordCount: Int
    private let enabled = Atomic<Bool>(false)

    public init(pageCount: Int) {
        self.pageCount = pageCount
        wordCount = (pageCount + 63) / 64
        words = .allocate(capacity: max(wordCount, 1))
        words.initialize(repeating: 0, count: max(wordCount, 1))
    }

    deinit { words.deallocate() }

    public var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Starts with every bit clear (the caller sends all pages once in its bulk pass).
    public func enable() {
        _ = take()
        enabled.store(true, ordering: .sequentiallyConsistent)
    }

    public func disable() {
        enabled.store(false, ordering: .sequentiallyConsistent)
        _ = take()
    }

    /// Marks the pages of `length` bytes at byte `offset` into RAM (already bounds-checked).
    @inline(__always)
    public func mark(offset: UInt64, length: Int) {
        guard enabled.load(ordering: .relaxed), length > 0 else { return }
        markSlow(offset: offset, length: length)
    }

    private func markSlow(offset: UInt64, length: Int) {
        let first = Int(offset / UInt64(DirtyPageBitmap.pageSize))
        let last = min(Int((offset + UInt64(length) - 1) / UInt64(DirtyPageBitmap.pageSize)), pageCount - 1)
        guard first <= last else { return }
        for page in first...last {
            ckvm_atomic_or64(words + page / 64, 1 << UInt64(page % 64))
        }
    }

    /// The pages marked since the last call, cleared.
    public func take() -> DirtyPageBitmap {
        var taken = [UInt64](repeating: 0, count: wordCount)
        for index in 0..<wordCount {
            taken[index] = ckvm_atomic_exchange64(words + index, 0)
        }
        return DirtyPageBitmap(pageCount: pageCount, words: taken)
    }
}
