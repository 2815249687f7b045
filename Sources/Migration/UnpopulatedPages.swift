import Glibc
import KVM
import Machine

/// The RAM pages no memory was ever given to, which therefore read as zero: guest RAM is a
/// private anonymous mapping, so a page that is neither present nor swapped out (the kernel's
/// /proc/self/pagemap, bits 63 and 62) has never been written. The bulk pass sends those as
/// zero markers without reading them, which would fault each one in (the larger part of an idle
/// guest's bulk pass here: ~50 ms for 512 MiB). Read after dirty tracking started, so a write
/// that populates a page later is in the dirty log: each sync takes its pages out of this set
/// (`remove`), and a page sent as zero before its write was reported goes again with the write.
struct UnpopulatedPages {
    private var words: [UInt64]

    /// nil if the kernel's page map cannot be read (the bulk pass then looks at every page).
    init?(ram: GuestRam) {
        guard ram.pageCount > 0, let base = try? ram.page(0).baseAddress else { return nil }
        self.init(mapping: UnsafeRawPointer(base), pageCount: ram.pageCount)
    }

    /// The pages of the private anonymous mapping at `mapping` (page-aligned) with no memory.
    init?(mapping base: UnsafeRawPointer, pageCount: Int) {
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        words = [UInt64](repeating: 0, count: (pageCount + 63) / 64)
        let firstEntry = Int(bitPattern: base) / GuestRam.pageSize
        let chunk = 1 << 16  // entries a read (512 KiB)
        var entries = [UInt64](repeating: 0, count: chunk)
        var page = 0
        while page < pageCount {
            let count = min(chunk, pageCount - page)
            let wanted = count * 8
            let got = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t((firstEntry + page) * 8)) }
            guard got == wanted else { return nil }
            for index in 0..<count where entries[index] & Self.populated == 0 {
                words[(page + index) / 64] |= 1 << UInt64((page + index) % 64)
            }
            page += count
        }
    }

    /// Present (63) or swapped (62).
    private static let populated: UInt64 = 0b11 << 62

    func contains(_ page: Int) -> Bool {
        page >= 0 && page / 64 < words.count && words[page / 64] & (1 << UInt64(page % 64)) != 0
    }

    /// The pages a dirty-log sync reported were written since: no longer known to be zero.
    mutating func remove(_ dirty: DirtyPageBitmap) {
        for index in 0..<min(words.count, dirty.words.count) where dirty.words[index] != 0 {
            words[index] &= ~dirty.words[index]
        }
    }

    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
}
