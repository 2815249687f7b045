import Glibc

/// mirror_dirty_init's question (bdrv_is_allocated_above): which byte ranges of the source hold
/// anything, so that the bulk pass skips what reads as zeroes on a fresh target. For `full` the
/// whole chain counts, for `top` only the top image, for `none` nothing. Where svmm cannot tell
/// (a qcow2 chain with a backing file under `full`, NBD, null-co) everything is copied.
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
            if let qcow2 = source.driver as? Qcow2Driver, source.backing == nil { return try qcow2.topAllocatedRanges() }
            return fileRanges(source) ?? everything
        }
    }

    /// Data ranges of the host file under raw filters (raw windows shift them), or nil.
    private static func fileRanges(_ node: BlockNode) -> [MirrorRange]? {
        var driver: BlockDriver = node.driver
        var base: Int64 = 0
        while let raw = driver as? RawDriver {
            base += raw.offset
            driver = raw.file.node.driver
        }
        guard let file = driver as? FileDriver else { return nil }
        let length = node.driver.length
        var ranges: [MirrorRange] = []
        var position: Int64 = 0
        while position < length {
            let data = lseek(file.fd, Int(base + position), seekData)
            // ENXIO: no data after the position; any other error: assume data to the end.
            if data < 0 {
                if errno != ENXIO { ranges.append(MirrorRange(offset: position, length: length - position)) }
                break
            }
            let start = Int64(data) - base
            guard start < length else { break }
            let hole = lseek(file.fd, data, seekHole)
            let stop = hole < 0 ? length : min(length, Int64(hole) - base)
            guard stop > start else { break }
            ranges.append(MirrorRange(offset: start, length: stop - start))
            position = stop
        }
        return ranges
    }
}
