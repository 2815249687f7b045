import Block
import Machine

/// The source's dirty bitmaps of one migration with `dirty-bitmaps` (QEMU's DBMSaveState):
/// found and marked busy when the migration starts, their start chunks sent first, their bits
/// and completion at the switch-over (or, after migrate-start-postcopy, once the destination
/// runs), and let go when the migration ends either way. Made, read and released on the loop;
/// the sender thread only gets the records.
final class OutgoingBitmaps {  // loop-owned: the sender thread holds it in a LoopBound
    private let entries: [(alias: String, bitmap: BdrvDirtyBitmap)]
    /// The start chunks, in the order the bitmaps are listed on their nodes.
    let starts: [DirtyBitmapRecord]

    /// init_dirty_bitmap_migration (on the loop).
    init(graph: BlockGraph) throws(BlockError) {
        let found = try graph.migratableBitmaps()
        entries = found.map { ($0.alias, $0.bitmap) }
        starts = found.map { item in
            let flags = item.bitmap.isEnabled ? DirtyBitmapRecord.enabledFlag : 0
            return .start(node: item.alias, bitmap: item.bitmap.name, granularity: UInt32(clamping: item.bitmap.granularity), flags: flags)
        }
        for item in found { item.bitmap.setBusy(true) }
    }

    /// Every bitmap's bits (all-zero chunks left out: the destination's bitmap starts empty)
    /// and its completion; on the loop, with the VM stopped and the images inactive.
    func finalChunks() -> [DirtyBitmapRecord] {
        var chunks: [DirtyBitmapRecord] = []
        let bitsPerChunk = DirtyBitmapRecord.bytesPerRecord * 8
        for (alias, bitmap) in entries {
            var first = 0
            while first < bitmap.bitCount {
                let count = min(bitsPerChunk, bitmap.bitCount - first)
                if let bytes = bitmap.serialize(firstBit: first, count: count), bytes.contains(where: { $0 != 0 }) {
                    chunks.append(.bits(node: alias, bitmap: bitmap.name, firstBit: UInt64(first), count: UInt64(count), bytes: bytes))
                }
                first += count
            }
            chunks.append(.complete(node: alias, bitmap: bitmap.name))
        }
        return chunks
    }

    /// dirty_bitmap_do_save_cleanup (on the loop).
    func release() {
        for (_, bitmap) in entries { bitmap.setBusy(false) }
    }
}
