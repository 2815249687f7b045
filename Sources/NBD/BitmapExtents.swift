import Block

/// `qemu:dirty-bitmap:NAME` for an export: a bitmap's dirty and clean runs as extents
/// (QEMU's bitmap_to_extents), dirty ones flagged NBD_STATE_DIRTY.
struct BitmapExtents {
    let bitmap: BdrvDirtyBitmap

    /// Extents covering [offset, offset + length), at most `limit` of them; once the list is full
    /// the rest is left out, so the extents may cover less than asked, as QEMU's do.
    func extents(offset: UInt64, length: UInt32, limit: Int) -> [(length: UInt32, flags: UInt32)] {
        var list = ExtentList(limit: limit)
        let end = Int64(offset) + Int64(length)
        var start = Int64(offset)
        // bdrv_dirty_bitmap_next_dirty_area: the next dirty run, clipped to [start, end).
        while start < end, let run = bitmap.nextDirtyRun(from: start), run.offset < end {
            let dirtyStart = max(run.offset, start)
            let dirtyEnd = min(run.offset + run.length, end)
            guard list.add(UInt32(dirtyStart - start), 0), list.add(UInt32(dirtyEnd - dirtyStart), NbdProtocol.stateDirty) else {
                return list.extents
            }
            start = dirtyEnd
        }
        list.add(UInt32(end - start), 0)
        return list.extents
    }
}
