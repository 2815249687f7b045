/// One bit per 4 KiB guest page, as KVM_GET_DIRTY_LOG returns it (64-bit words, bit i of word w
/// is page 64·w + i): the pages the guest dirtied (KVM's log) united with the pages svmm itself
/// wrote (GuestMemory's VMM-write bitmap), for the migration sender's next pass.
public struct DirtyPageBitmap: Sendable, Equatable {
    public static let pageSize = 4096
    public let pageCount: Int
    public private(set) var words: [UInt64]

    /// `allDirty`: a bulk pass sends every page once.
    public init(pageCount: Int, allDirty: Bool = false) {
        precondition(pageCount >= 0, "a page count is never negative")
        self.pageCount = pageCount
        words = [UInt64](repeating: allDirty ? ~0 : 0, count: (pageCount + 63) / 64)
        if allDirty { clearBitsPastEnd() }
    }

    /// KVM's words for `pageCount` pages; extra words are dropped and bits past the end cleared.
    public init(pageCount: Int, words: [UInt64]) {
        self.init(pageCount: pageCount)
        for index in 0..<min(words.count, self.words.count) { self.words[index] = words[index] }
        clearBitsPastEnd()
    }

    private mutating func clearBitsPastEnd() {
        let tail = pageCount % 64
        if tail != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(tail)) - 1 }
    }

    public func isDirty(_ page: Int) -> Bool {
        guard page >= 0, page < pageCount else { return false }
        return words[page / 64] & (1 << UInt64(page % 64)) != 0
    }

    /// Marks `page`; pages outside the bitmap are ignored.
    public mutating func mark(_ page: Int) {
        guard page >= 0, page < pageCount else { return }
        words[page / 64] |= 1 << UInt64(page % 64)
    }

    /// Adds every page dirty in `other` (which must cover the same pages).
    public mutating func formUnion(_ other: DirtyPageBitmap) {
        precondition(other.pageCount == pageCount, "dirty bitmaps of different RAM sizes")
        for index in words.indices { words[index] |= other.words[index] }
    }

    public var dirtyCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// The dirty pages in ascending order.
    public var dirtyPages: [Int] {
        var pages: [Int] = []
        pages.reserveCapacity(dirtyCount)
        for (index, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                pages.append(index * 64 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
        return pages
    }
}
