import Glibc

/// The internal snapshot table as far as the metadata overlap checks need it: the bytes it takes
/// and where each snapshot's (inactive) L1 table lies. Read at open with QEMU's limits
/// (qcow2_read_snapshots); svmm does not create, load or delete internal snapshots.
struct Qcow2SnapshotTable {
    struct L1Table {
        let offset: Int64
        let byteCount: Int64
    }

    let offset: Int64
    let byteCount: Int64
    let l1Tables: [L1Table]

    /// QEMU's QCOW_MAX_SNAPSHOT_EXTRA_DATA and QCOW_MAX_SNAPSHOTS_SIZE.
    static let maxExtraData = 1024
    static let maxTableBytes: Int64 = 1024 * Int64(Qcow2Layout.maxSnapshots)
    private static let entryHeaderBytes = 40
    private static let readChunk = 64 << 10

    init(file: SyncBlockIO, header: Qcow2Header) throws(BlockError) {
        let tableOffset = Int64(clamping: header.snapshotsOffset)
        offset = tableOffset
        var window: [UInt8] = []
        var windowStart: Int64 = 0
        /// `count` bytes of the table from `position` (relative to its start), read in chunks.
        func bytes(at position: Int64, count: Int) throws(BlockError) -> ArraySlice<UInt8> {
            if position < windowStart || position + Int64(count) > windowStart + Int64(window.count) {
                windowStart = position
                window = try file.readSync(at: tableOffset + position, count: max(count, Self.readChunk))
            }
            let start = Int(position - windowStart)
            return window[start..<start + count]
        }
        var position: Int64 = 0
        var tables: [L1Table] = []
        for index in 0..<Int(header.snapshotCount) {
            let entry = Array(try bytes(at: position, count: Self.entryHeaderBytes))
            let l1Offset = Qcow2Bytes.uint64(entry, at: 0)
            let l1Size = Qcow2Bytes.uint32(entry, at: 8)
            let idSize = Int(entry[12]) << 8 | Int(entry[13])
            let nameSize = Int(entry[14]) << 8 | Int(entry[15])
            let extraSize = Int(Qcow2Bytes.uint32(entry, at: 36))
            guard extraSize <= Self.maxExtraData else {
                throw BlockError("Too much extra metadata in snapshot table entry \(index)", errno: EFBIG)
            }
            let entryBytes = (Self.entryHeaderBytes + extraSize + idSize + nameSize + 7) / 8 * 8
            position += Int64(entryBytes)
            guard position <= Self.maxTableBytes else { throw BlockError("Snapshot table too large", errno: EFBIG) }
            // Kept whatever the values: the overlap check works on them with overflow-safe bounds.
            tables.append(L1Table(offset: Int64(clamping: l1Offset), byteCount: Int64(l1Size) * 8))
        }
        byteCount = position
        l1Tables = tables
    }
}
