import Glibc

/// A dirty bitmap on a node (QEMU's BdrvDirtyBitmap): one bit per `granularity` bytes of the
/// node, set by every write, discard and write-zeroes through an edge while the bitmap records.
/// Not persistent: it lives as long as the node (svmm stores none in images).
public final class BdrvDirtyBitmap {
    public let name: String
    public let granularity: Int64
    /// Bytes of the node it covers.
    public let length: Int64
    /// False after `block-dirty-bitmap-disable`: writes no longer set bits.
    public internal(set) var isEnabled: Bool
    /// In use by an operation (a job, an export of it) that others must not change it under.
    public private(set) var isBusy = false
    /// bdrv_dirty_bitmap_create_successor: while an incoming migration fills this bitmap, an
    /// anonymous bitmap on the same node records the writes, merged back by `reclaim`.
    public internal(set) var successor: BdrvDirtyBitmap?
    var words: [UInt64]
    /// Bits set, kept up to date so `count` costs nothing.
    private var setBits = 0

    /// BDRV_BITMAP_MAX_NAME_SIZE.
    static let maxNameLength = 1023

    init(name: String, granularity: Int64, length: Int64, enabled: Bool) {
        self.name = name
        self.granularity = granularity
        self.length = length
        isEnabled = enabled
        let bits = length <= 0 ? 0 : Int((length - 1) / granularity + 1)
        words = [UInt64](repeating: 0, count: (bits + 63) / 64)
    }

    public var isRecording: Bool { isEnabled }

    /// bdrv_dirty_bitmap_set_busy: an operation (an NBD export of it) takes or lets go of it.
    public func setBusy(_ busy: Bool) { isBusy = busy }

    /// bdrv_get_dirty_count: dirty bytes, whole granules.
    public var count: Int64 { Int64(setBits) * granularity }

    /// The granules [first, last] that a byte range touches, clipped to the node; nil if none.
    private func granules(offset: Int64, length: Int64) -> ClosedRange<Int>? {
        guard length > 0, offset >= 0, offset < self.length else { return nil }
        let end = min(self.length, offset > Int64.max - length ? Int64.max : offset + length)
        return Int(offset / granularity)...Int((end - 1) / granularity)
    }

    func set(offset: Int64, length: Int64) {
        guard let range = granules(offset: offset, length: length) else { return }
        for bit in range { setBit(bit, to: true) }
    }

    func reset(offset: Int64, length: Int64) {
        guard let range = granules(offset: offset, length: length) else { return }
        for bit in range { setBit(bit, to: false) }
    }

    public func isDirty(at offset: Int64) -> Bool {
        guard offset >= 0, offset < length else { return false }
        let bit = Int(offset / granularity)
        return words[bit / 64] & (1 << UInt64(bit % 64)) != 0
    }

    /// bdrv_clear_dirty_bitmap.
    func clear() {
        for index in words.indices { words[index] = 0 }
        setBits = 0
    }

    /// bdrv_merge_dirty_bitmap: every byte dirty in `source` becomes dirty here (granularities may differ).
    func merge(_ source: BdrvDirtyBitmap) {
        var offset: Int64 = 0
        while let run = source.nextDirtyRun(from: offset) {
            set(offset: run.offset, length: run.length)
            offset = run.offset + run.length
        }
    }

    /// The first run of dirty bytes at or after `offset` (clipped to the node), or nil.
    public func nextDirtyRun(from offset: Int64) -> (offset: Int64, length: Int64)? {
        guard offset < length else { return nil }
        var bit = Int(max(0, offset) / granularity)
        let bits = Int((length - 1) / granularity) + 1
        while bit < bits && !isSet(bit) {
            if bit % 64 == 0 && words[bit / 64] == 0 { bit += 64 } else { bit += 1 }
        }
        guard bit < bits else { return nil }
        var end = bit
        while end < bits && isSet(end) { end += 1 }
        let start = Int64(bit) * granularity
        return (start, min(length, Int64(end) * granularity) - start)
    }

    /// Bits this bitmap has (one per granule of the node).
    public var bitCount: Int { length <= 0 ? 0 : Int((length - 1) / granularity) + 1 }

    func isSet(_ bit: Int) -> Bool { words[bit / 64] & (1 << UInt64(bit % 64)) != 0 }

    func setBit(_ bit: Int, to value: Bool) {
        let mask: UInt64 = 1 << UInt64(bit % 64)
        let was = words[bit / 64] & mask != 0
        guard was != value else { return }
        if value { words[bit / 64] |= mask } else { words[bit / 64] &= ~mask }
        setBits += value ? 1 : -1
    }
}
