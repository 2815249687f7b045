/// One refcount block: the reference counts of a run of clusters, each `1 << order` bits wide
/// (sub-byte widths packed from the least significant bit, wider ones big-endian).
final class Qcow2RefcountBlock: Qcow2Cacheable {
    let offset: Int64
    private let order: Int
    private var bytes: [UInt8]
    private var dirtyLow = Int.max
    private var dirtyHigh = 0
    var lastUse = 0
    var isPinned: Bool { false }

    init(offset: Int64, bytes: [UInt8], order: Int) {
        self.offset = offset
        self.bytes = bytes
        self.order = order
    }

    /// A block for clusters nobody uses yet; all of it must reach the disk.
    static func empty(offset: Int64, clusterSize: Int, order: Int) -> Qcow2RefcountBlock {
        let block = Qcow2RefcountBlock(offset: offset, bytes: [UInt8](repeating: 0, count: clusterSize), order: order)
        block.dirtyLow = 0
        block.dirtyHigh = clusterSize
        return block
    }

    var isDirty: Bool { dirtyLow < dirtyHigh }

    subscript(index: Int) -> UInt64 {
        get { order < 3 ? packedValue(index) : wideValue(index) }
        set {
            if order < 3 { setPacked(index, newValue) } else { setWide(index, newValue) }
        }
    }

    private var bits: Int { 1 << order }

    private func packedValue(_ index: Int) -> UInt64 {
        let perByte = 8 / bits
        let shift = (index % perByte) * bits
        return UInt64((bytes[index / perByte] >> shift) & UInt8((1 << bits) - 1))
    }

    private func setPacked(_ index: Int, _ value: UInt64) {
        let perByte = 8 / bits
        let shift = (index % perByte) * bits
        let mask = UInt8((1 << bits) - 1) << shift
        let byte = index / perByte
        bytes[byte] = bytes[byte] & ~mask | (UInt8(truncatingIfNeeded: value) << shift) & mask
        markDirty(byte, count: 1)
    }

    private func wideValue(_ index: Int) -> UInt64 {
        let width = bits / 8
        return bytes[index * width..<(index + 1) * width].reduce(0) { $0 << 8 | UInt64($1) }
    }

    private func setWide(_ index: Int, _ value: UInt64) {
        let width = bits / 8
        for byte in 0..<width {
            bytes[index * width + byte] = UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - byte)))
        }
        markDirty(index * width, count: width)
    }

    private func markDirty(_ start: Int, count: Int) {
        dirtyLow = min(dirtyLow, start)
        dirtyHigh = max(dirtyHigh, start + count)
    }

    /// Writes the dirty range, widened to 4 KiB so the write covers whole blocks of the cluster.
    func writeBack(to file: SyncBlockIO) throws(BlockError) {
        guard isDirty else { return }
        let low = dirtyLow / 4096 * 4096
        let high = min((dirtyHigh + 4095) / 4096 * 4096, bytes.count)
        try file.writeSync(Array(bytes[low..<high]), at: offset + Int64(low))
        dirtyLow = .max
        dirtyHigh = 0
    }
}
