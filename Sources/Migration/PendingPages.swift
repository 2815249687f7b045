import KVM

/// The pages still to send (QEMU's RAMBlock bmap with migration_dirty_pages): all of them at the
/// start (the bulk pass), then each dirty-log sync adds what was dirtied meanwhile. Sending takes
/// pages from a cursor that goes on where the last chunk stopped and wraps around, as
/// ram_find_and_save_block goes on from last_seen_block, so a sync in mid-pass does not make the
/// sender start over.
struct PendingPages {
    let pageCount: Int
    private var words: [UInt64]
    /// Pages set.
    private(set) var count: Int
    /// The page the next `take` starts looking at.
    private var cursor = 0

    init(pageCount: Int, all: Bool) {
        self.pageCount = max(pageCount, 0)
        words = [UInt64](repeating: all ? ~0 : 0, count: (self.pageCount + 63) / 64)
        count = all ? self.pageCount : 0
        let tail = self.pageCount % 64
        if all, tail != 0, !words.isEmpty { words[words.count - 1] = (1 << UInt64(tail)) - 1 }
    }

    var isEmpty: Bool { count == 0 }
    var bytes: UInt64 { UInt64(count) * UInt64(MigrationStream.pageSize) }

    /// Adds every page of `dirty` (migration_bitmap_sync); returns how many were not pending yet.
    @discardableResult
    mutating func insert(_ dirty: DirtyPageBitmap) -> Int {
        var added = 0
        for index in 0..<min(words.count, dirty.words.count) {
            let new = dirty.words[index] & ~words[index]
            if new != 0 {
                added += new.nonzeroBitCount
                words[index] |= new
            }
        }
        count += added
        return added
    }

    /// Up to `limit` pending pages from the cursor on (wrapping around once), no longer pending.
    mutating func take(upTo limit: Int) -> [Int] {
        var pages: [Int] = []
        guard count > 0, limit > 0 else { return pages }
        pages.reserveCapacity(min(limit, count))
        collect(from: cursor, to: pageCount, limit: limit, into: &pages)
        if pages.count < limit { collect(from: 0, to: cursor, limit: limit, into: &pages) }
        count -= pages.count
        if let last = pages.last { cursor = last + 1 < pageCount ? last + 1 : 0 }
        return pages
    }

    private mutating func collect(from start: Int, to end: Int, limit: Int, into pages: inout [Int]) {
        var page = start
        while page < end, pages.count < limit {
            let word = page / 64
            var bits = words[word] & (~UInt64(0) << UInt64(page % 64))
            let bitsBeforeEnd = end - word * 64
            if bitsBeforeEnd < 64 { bits &= (1 << UInt64(bitsBeforeEnd)) - 1 }
            while bits != 0, pages.count < limit {
                let bit = bits.trailingZeroBitCount
                pages.append(word * 64 + bit)
                words[word] &= ~(1 << UInt64(bit))
                bits &= bits - 1
            }
            page = (word + 1) * 64
        }
    }

    /// Every pending page, ascending (the stop-and-copy pass); none pending afterwards.
    mutating func takeAll() -> [Int] {
        cursor = 0
        return take(upTo: count)
    }
}
