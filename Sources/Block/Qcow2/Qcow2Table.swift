/// A table of 64-bit entries (L1, L2 or the refcount table) held in memory, with the range
/// that differs from the disk.
final class Qcow2Table: Qcow2Cacheable {
    let offset: Int64
    private(set) var entries: [UInt64]
    private var dirtyLow = Int.max
    private var dirtyHigh = 0
    /// Entries changed for an allocation whose data write is still in flight: index → the value
    /// the disk keeps until `commit`, so no table on disk points at a cluster without its data.
    private var pending: [Int: UInt64] = [:]
    var lastUse = 0
    /// Counts changes of entries, so an index built from them (the overlap checks') knows it is stale.
    private(set) var generation = 0

    init(offset: Int64, entries: [UInt64], dirty: Bool = false) {
        self.offset = offset
        self.entries = entries
        if dirty { markDirty(0..<entries.count) }
    }

    static func load(from file: SyncBlockIO, offset: Int64, count: Int) throws(BlockError) -> Qcow2Table {
        Qcow2Table(offset: offset, entries: Qcow2Bytes.decodeEntries(try file.readSync(at: offset, count: count * 8)))
    }

    var count: Int { entries.count }
    var isDirty: Bool { dirtyLow < dirtyHigh }
    var isPinned: Bool { !pending.isEmpty }

    subscript(index: Int) -> UInt64 { entries[index] }

    func set(_ index: Int, to value: UInt64) {
        entries[index] = value
        generation += 1
        markDirty(index..<index + 1)
    }

    /// Changes the entry in memory only; the disk keeps the old value until `commit`.
    func setPending(_ index: Int, to value: UInt64) {
        pending[index] = entries[index]
        entries[index] = value
        generation += 1
    }

    func commit(_ index: Int) {
        pending.removeValue(forKey: index)
        markDirty(index..<index + 1)
    }

    /// Undoes `setPending` (the data write failed).
    func revert(_ index: Int) {
        if let old = pending.removeValue(forKey: index) {
            entries[index] = old
            generation += 1
        }
    }

    /// Extends the table with zero entries (a grown refcount table).
    func extend(to count: Int) {
        guard count > entries.count else { return }
        entries += [UInt64](repeating: 0, count: count - entries.count)
        generation += 1
    }

    func markDirty(_ range: Range<Int>) {
        dirtyLow = min(dirtyLow, range.lowerBound)
        dirtyHigh = max(dirtyHigh, range.upperBound)
    }

    /// Writes the dirty range, widened to 4 KiB so the write covers whole blocks of the table.
    func writeBack(to file: SyncBlockIO) throws(BlockError) {
        guard isDirty else { return }
        let low = dirtyLow / 512 * 512
        let high = min((dirtyHigh + 511) / 512 * 512, entries.count)
        var values = Array(entries[low..<high])
        for (index, old) in pending where (low..<high).contains(index) { values[index - low] = old }
        try file.writeSync(Qcow2Bytes.encodeEntries(values), at: offset + Int64(low) * 8)
        dirtyLow = .max
        dirtyHigh = 0
    }
}
