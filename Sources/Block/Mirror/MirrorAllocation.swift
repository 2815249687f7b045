import Glibc

/// mirror_dirty_init's question (bdrv_is_allocated_above): which byte ranges the bulk pass copies.
/// For `full` everything (a protocol node counts as allocated throughout, as in QEMU; holes are
/// then written as write-zeroes without being read, see `isHole`), for `top` what the top image
/// itself holds, for `none` nothing.
enum MirrorAllocation {
    /// SEEK_DATA and SEEK_HOLE (Linux; Glibc hides them without _GNU_SOURCE).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4

    static func initialRanges(of source: BlockNode, sync: MirrorSyncMode) throws(BlockError) -> [MirrorRange] {
        let everything = [MirrorRange(offset: 0, length: source.driver.length)]
        switch sync {
        case .none:
            return []
        case .top:
            guard let qcow2 = source.driver as? Qcow2Driver else { return everything }
            return try qcow2.topAllocatedRanges()
        case .full:
            return everything
        }
    }

    /// The host file under raw filters (raw windows shift it): its descriptor and the shift.
    static func hostFile(of node: BlockNode) -> (fd: Int32, base: Int64)? {
        var driver: BlockDriver = node.driver
        var base: Int64 = 0
        while let raw = driver as? RawDriver {
            base += raw.offset
            driver = raw.file.node.driver
        }
        guard let file = driver as? FileDriver else { return nil }
        return (file.fd, base)
    }

    /// Whether the range is one hole of the host file (SEEK_DATA finds no data before its end):
    /// QEMU's block status says BDRV_BLOCK_ZERO and the mirror writes zeroes without reading.
    static func isHole(_ range: MirrorRange, in file: (fd: Int32, base: Int64)) -> Bool {
        let start = file.base + range.offset
        let data = lseek(file.fd, Int(start), seekData)
        if data < 0 { return errno == ENXIO }  // no data after the start at all
        return Int64(data) >= start + range.length
    }
}
