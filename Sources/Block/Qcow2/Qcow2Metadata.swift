import Glibc

/// A qcow2 image's metadata: header, L1 table, cached L2 tables and refcounts, and the order in
/// which changes reach the disk: counts before the tables that point at new clusters, and tables
/// before the counts of clusters they stopped pointing at.
final class Qcow2Metadata {
    let file: SyncBlockIO
    private(set) var header: Qcow2Header
    let extensions: Qcow2HeaderExtensions
    let backingFileName: String?
    let writable: Bool
    let clusterBits: Int
    let l2Bits: Int
    let l1: Qcow2Table
    let refcounts: Qcow2Refcounts
    private let l2Cache: Qcow2Cache<Qcow2Table>
    /// Host clusters that lost a reference through a table change that may not be on disk yet,
    /// each with the `releaseTag` of its release.
    var pendingReleases: [(cluster: Int64, tag: Int)] = []
    /// Set by the driver: how many guest requests had started when a release is recorded. A
    /// released cluster may be reused once all of those are done (none can still touch it).
    var releaseTag = 0
    /// Fatal corruption was found: the image is marked corrupt and takes no more writes.
    private(set) var isCorrupt = false
    /// A corruption was reported; later ones are not (QEMU's signaled_corruption).
    private var signaledCorruption = false
    /// Hears of every corruption reported (QEMU sends BLOCK_IMAGE_CORRUPTED from the same place).
    var onCorruption: ((Qcow2CorruptionReport) -> Void)?
    let snapshots: Qcow2SnapshotTable
    let overlapIndex = Qcow2OverlapIndex()

    /// Opens and checks the image; `fileLength` is the protocol child's size.
    init(file: SyncBlockIO, fileLength: Int64, writable: Bool, imageName: String?,
         cacheLimits: Qcow2CacheLimits = .standard,
         onCorruption: ((Qcow2CorruptionReport) -> Void)? = nil) throws(BlockError) {
        self.file = file
        self.writable = writable
        self.onCorruption = onCorruption
        let header = try Qcow2Header(parsing: try file.readSync(at: 0, count: Int(Qcow2Layout.v3HeaderLength)))
        let cluster = try file.readSync(at: 0, count: header.clusterSize)
        let extensionsEnd = header.backingFileOffset != 0 ? Int(header.backingFileOffset) : header.clusterSize
        extensions = try Qcow2HeaderExtensions(parsing: cluster, from: Int(header.headerLength), to: extensionsEnd)
        try header.checkFeatures(extensions, writable: writable, imageName: imageName)
        try header.checkTables()
        backingFileName = try Self.backingFileName(header, cluster)
        self.header = header
        clusterBits = Int(header.clusterBits)
        l2Bits = clusterBits - 3
        l1 = try Qcow2Table.load(from: file, offset: Int64(header.l1TableOffset), count: Int(header.l1Size))
        l2Cache = Qcow2Cache(capacity: cacheLimits.l2Bytes >> clusterBits)
        snapshots = try Qcow2SnapshotTable(file: file, header: header)
        refcounts = try Qcow2Refcounts(file: file, header: header, fileLength: fileLength, scanForEnd: writable,
                                       cacheCapacity: cacheLimits.refcountBytes >> clusterBits)
        refcounts.metadata = self
        if writable { try clearAutoclearFeatures() }
    }

    private static func backingFileName(_ header: Qcow2Header, _ cluster: [UInt8]) throws(BlockError) -> String? {
        guard header.backingFileOffset != 0 else { return nil }
        let start = Int(header.backingFileOffset)
        let length = Int(header.backingFileSize)
        guard length <= min(Qcow2Layout.maxBackingFileLength, header.clusterSize - start) else {
            throw BlockError("Backing file name too long", errno: EINVAL)
        }
        return String(decoding: cluster[start..<start + length], as: UTF8.self)
    }

    /// Autoclear bits name features whose data a program that does not know them must invalidate
    /// when it writes the image (svmm refuses writing images whose bitmaps it would invalidate).
    private func clearAutoclearFeatures() throws(BlockError) {
        guard header.version >= 3, header.autoclearFeatures != 0 else { return }
        try file.writeSync([UInt8](repeating: 0, count: 8), at: Qcow2Layout.autoclearFieldOffset)
        try file.flushSync()
        header.autoclearFeatures = 0
    }

    var clusterSize: Int { 1 << clusterBits }
    var l2Mask: Int64 { (1 << Int64(l2Bits)) - 1 }

    /// What the L2 entry of a guest cluster says.
    func state(ofGuestCluster cluster: Int64) throws(BlockError) -> Qcow2ClusterState {
        guard let table = try l2Table(at: Int(cluster >> l2Bits)) else { return .unallocated }
        return try state(of: table, index: Int(cluster & l2Mask))
    }

    func state(of table: Qcow2Table, index: Int) throws(BlockError) -> Qcow2ClusterState {
        let state = Qcow2ClusterState(entry: table[index])
        switch state {
        case .data(let host, _), .zero(let host?):
            guard host & Int64(clusterSize - 1) == 0 else {
                throw corruption("Cluster allocation offset \(Self.hex(host)) unaligned (L2 offset: \(Self.hex(table.offset)), L2 index: \(Self.hex(Int64(index))))")
            }
        default:
            break
        }
        if case .zero = state, header.version < 3 {
            throw corruption("Zero cluster entry found in pre-v3 image (L2 offset: \(Self.hex(table.offset)), L2 index: \(Self.hex(Int64(index))))")
        }
        return state
    }

    /// The L2 table an L1 entry points at, from the cache or the disk; nil where there is none.
    func l2Table(at l1Index: Int) throws(BlockError) -> Qcow2Table? {
        guard l1Index < l1.count else { return nil }
        let offset = Int64(l1[l1Index] & Qcow2Layout.offsetMask)
        guard offset != 0 else { return nil }
        if let cached = l2Cache.get(offset) { return cached }
        guard offset & Int64(clusterSize - 1) == 0 else {
            throw corruption("L2 table offset \(Self.hex(offset)) unaligned (L1 index: \(Self.hex(Int64(l1Index))))")
        }
        let table = try Qcow2Table.load(from: file, offset: offset, count: clusterSize / 8)
        try cache(table)
        return table
    }

    /// While set, no cache eviction writes a dirty table (the driver sets it while a metadata
    /// write could clobber guest data in flight).
    var holdsDirtyTables: Bool {
        get { l2Cache.keepsDirtyEntries }
        set {
            l2Cache.keepsDirtyEntries = newValue
            refcounts.keepsDirtyBlocks = newValue
        }
    }

    func cache(_ table: Qcow2Table) throws(BlockError) {
        try l2Cache.insert(table, writeBack: evict)
    }

    /// A dirty L2 table leaving the cache: the counts of the clusters it points at go first.
    private func evict(_ table: Qcow2Table) throws(BlockError) {
        if refcounts.isDirty {
            try refcounts.writeBack()
            try file.flushSync()
        }
        try writeBack(l2: table)
    }

    /// Every metadata write is checked against the other metadata first (QEMU's cache flush
    /// calls qcow2_pre_write_overlap_check with the written kind ignored), and none is made once
    /// the image is marked corrupt.
    private func writeBack(l2 table: Qcow2Table) throws(BlockError) {
        guard table.isDirty else { return }
        try refuseIfCorrupt()
        try checkWrite(offset: table.offset, size: Int64(clusterSize), ignoring: .activeL2)
        try table.writeBack(to: file)
    }

    private func writeBackL1() throws(BlockError) {
        guard l1.isDirty else { return }
        try refuseIfCorrupt()
        try checkWrite(offset: l1.offset, size: Int64(l1.count) * 8, ignoring: .activeL1)
        try l1.writeBack(to: file)
    }

    func refuseIfCorrupt() throws(BlockError) {
        if isCorrupt { throw BlockError("qcow2: Image is corrupt; writes are refused", errno: EIO) }
    }

    var isDirty: Bool { refcounts.isDirty || l1.isDirty || l2Cache.all.contains { $0.isDirty } || !pendingReleases.isEmpty }

    /// Writes every dirty table in dependency order, then drops the references the tables gave
    /// up, for releases tagged `releasableTag` or lower.
    func writeBack(releasableTag: Int) throws(BlockError) {
        // After a fatal corruption nothing more reaches the image, and a flush says so.
        try refuseIfCorrupt()
        let tablesDirty = l1.isDirty || l2Cache.all.contains { $0.isDirty }
        if refcounts.isDirty {
            try refcounts.writeBack()
            if tablesDirty { try file.flushSync() }
        }
        for table in l2Cache.all where table.isDirty { try writeBack(l2: table) }
        try writeBackL1()
        guard pendingReleases.contains(where: { $0.tag <= releasableTag }) else { return }
        try file.flushSync()
        try applyReleases(upTo: releasableTag)
        try refcounts.writeBack()
    }

    private func applyReleases(upTo releasableTag: Int) throws(BlockError) {
        var kept: [(cluster: Int64, tag: Int)] = []
        for (position, release) in pendingReleases.enumerated() {
            guard release.tag <= releasableTag else {
                kept.append(release)
                continue
            }
            do {
                try refcounts.change(cluster: release.cluster >> clusterBits, by: -1)
            } catch {
                pendingReleases = kept + pendingReleases[position...]
                throw error
            }
        }
        pendingReleases = kept
    }

    /// Forgets cached tables (after `writeBack`): another process may change the image.
    func dropCaches() {
        l2Cache.removeAll()
        refcounts.dropCache()
    }

    /// QEMU's qcow2_signal_corruption: reports the corruption once; on a writable image it is
    /// fatal: the corrupt bit (incompatible feature bit 1) goes to the disk and no write follows.
    func corruption(_ message: String, offset: Int64? = nil, size: Int64? = nil) -> BlockError {
        let fatal = writable
        if !signaledCorruption || (fatal && !isCorrupt) {
            signaledCorruption = true
            if fatal {
                isCorrupt = true
                markCorrupt()
            }
            onCorruption?(Qcow2CorruptionReport(message: message, offset: offset, size: size, fatal: fatal))
        }
        guard fatal else { return BlockError("qcow2: Image is corrupt: \(message)", errno: EIO) }
        return BlockError("qcow2: Marking image as corrupt: \(message); further corruption events will be suppressed", errno: EIO)
    }

    /// QEMU's qcow2_mark_corrupt (version 2 headers have no feature bits: the image is only
    /// refused writes until it is closed).
    private func markCorrupt() {
        header.incompatibleFeatures |= Qcow2Layout.incompatCorrupt
        guard header.version >= 3 else { return }
        var bits = [UInt8](repeating: 0, count: 8)
        Qcow2Bytes.put(header.incompatibleFeatures, into: &bits, at: 0)
        try? file.writeSync(bits, at: Qcow2Layout.incompatibleFieldOffset)
        try? file.flushSync()
    }

    static func hex(_ value: Int64) -> String { "0x" + String(value, radix: 16) }
}
