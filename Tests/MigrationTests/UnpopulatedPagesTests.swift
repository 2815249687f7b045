import Glibc
import KVM
import Testing
@testable import Migration

/// The kernel's page map read for a private anonymous mapping, as guest RAM is: only the pages
/// written (or read) have memory; a dirty-log report takes pages out of the set.
struct UnpopulatedPagesTests {
    @Test func pagesWithoutMemoryAreTheOnesNeverTouched() throws {
        let pages = 1000  // not a multiple of 64: the last word is partial
        let size = pages * 4096
        let mapping = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(mapping != MAP_FAILED)
        defer { munmap(mapping, size) }
        madvise(mapping, size, MADV_NOHUGEPAGE)  // one touch must not give memory to its neighbours
        let written = [0, 3, 64, 999]
        for page in written { mapping.storeBytes(of: 0xA5, toByteOffset: page * 4096, as: UInt8.self) }
        let read = 500
        _ = mapping.load(fromByteOffset: read * 4096, as: UInt8.self)

        var unpopulated = try #require(UnpopulatedPages(mapping: UnsafeRawPointer(mapping), pageCount: pages))
        for page in written { #expect(!unpopulated.contains(page)) }
        #expect(!unpopulated.contains(read))  // the zero page mapped in: present, and looked at as any page
        for page in [1, 2, 63, 65, 998] { #expect(unpopulated.contains(page)) }
        #expect(!unpopulated.contains(-1) && !unpopulated.contains(pages))
        #expect(unpopulated.count == pages - written.count - 1)

        var dirty = DirtyPageBitmap(pageCount: pages)
        dirty.mark(2)
        dirty.mark(998)
        unpopulated.remove(dirty)
        #expect(!unpopulated.contains(2) && !unpopulated.contains(998) && unpopulated.contains(1))
        #expect(unpopulated.count == pages - written.count - 3)
    }
}
