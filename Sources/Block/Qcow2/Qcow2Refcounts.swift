import Glibc

/// Cluster reference counts: the refcount table (whole, in memory), cached refcount blocks,
/// the cluster allocator and the growth of the table.
final class Qcow2Refcounts {
    private let file: SyncBlockIO
    private let clusterBits: Int
    private let order: Int
    /// log2 of the number of clusters one refcount block counts.
    private let blockBits: Int
    private let maxRefcount: UInt64
    private(set) var table: Qcow2Table
    private let blocks: Qcow2Cache<Qcow2RefcountBlock>
    /// No cluster below this index is free.
    private var freeHint: Int64 = 0
    /// Clusters from this index on lie past everything the image has used: free, and zero on disk.
    private(set) var freshFrom: Int64
    /// The image these counts belong to, for its overlap checks and corruption reports (unset
    /// while it opens: a corruption found then fails the open).
    weak var metadata: Qcow2Metadata?

    /// `scanForEnd` finds the last counted cluster (needed to allocate; not to read).
    init(file: SyncBlockIO, header: Qcow2Header, fileLength: Int64, scanForEnd: Bool, cacheCapacity: Int) throws(BlockError) {
        self.file = file
        clusterBits = Int(header.clusterBits)
        order = Int(header.refcountOrder)
        blockBits = clusterBits + 3 - order
        maxRefcount = order == 6 ? .max : (1 << (UInt64(1) << order)) - 1
        let entries = Int(header.refcountTableClusters) << (clusterBits - 3)
        table = try Qcow2Table.load(from: file, offset: Int64(header.refcountTableOffset), count: entries)
        blocks = Qcow2Cache(capacity: cacheCapacity)
        freshFrom = (fileLength + (1 << clusterBits) - 1) >> clusterBits
        if scanForEnd { freshFrom = max(freshFrom, try lastCountedCluster() + 1) }
    }

    private var clusterSize: Int { 1 << clusterBits }
    private var blockMask: Int64 { (1 << Int64(blockBits)) - 1 }

    var isDirty: Bool { table.isDirty || blocks.all.contains { $0.isDirty } }

    /// While set, dirty refcount blocks are not evicted (see `Qcow2Metadata.holdsDirtyTables`).
    var keepsDirtyBlocks: Bool {
        get { blocks.keepsDirtyEntries }
        set { blocks.keepsDirtyEntries = newValue }
    }

    func refcount(ofCluster cluster: Int64) throws(BlockError) -> UInt64 {
        guard let block = try block(at: Int(cluster >> blockBits)) else { return 0 }
        return block[Int(cluster & blockMask)]
    }

    /// Adds `delta` to a cluster's count. The cluster's refcount block must exist.
    func change(cluster: Int64, by delta: Int64) throws(BlockError) {
        guard let block = try block(at: Int(cluster >> blockBits)) else {
            throw BlockError("qcow2: cluster \(cluster) has no refcount block", errno: EIO)
        }
        let index = Int(cluster & blockMask)
        let old = block[index]
        let magnitude = delta.magnitude
        if delta < 0 && old < magnitude {
            throw BlockError("qcow2: refcount of cluster \(cluster) would drop below zero", errno: EIO)
        }
        if delta > 0 && maxRefcount - old < magnitude {
            throw BlockError("qcow2: refcount of cluster \(cluster) would exceed \(maxRefcount)", errno: ERANGE)
        }
        block[index] = delta < 0 ? old - magnitude : old + magnitude
        if block[index] == 0 { freeHint = min(freeHint, cluster) }
    }

    /// Takes `count` contiguous free clusters (refcount 1 each). `fresh`: they were never used,
    /// so they read as zeroes.
    func allocate(count: Int) throws(BlockError) -> (offset: Int64, fresh: Bool) {
        // Each retry adds a refcount block or grows the table: on sound metadata a few suffice,
        // so more means the counts contradict themselves (never spin on a hostile image).
        for _ in 0..<(count >> blockBits) + 8 {
            let (start, firstFree) = try findFreeRun(count)
            let run = start..<start + Int64(count)
            guard run.upperBound <= Qcow2Layout.maxClusterOffset >> Int64(clusterBits) else {
                throw BlockError("qcow2: no free cluster below the largest host offset qcow2 can address", errno: EFBIG)
            }
            // A new refcount block takes a free cluster, maybe one of this run: search again.
            guard try blocksExist(for: run) else { continue }
            for cluster in run { try change(cluster: cluster, by: 1) }
            freeHint = firstFree == start ? run.upperBound : firstFree
            let fresh = start >= freshFrom
            freshFrom = max(freshFrom, run.upperBound)
            return (start << Int64(clusterBits), fresh)
        }
        throw corruption("Cluster allocation does not converge (refcount table or blocks inconsistent)")
    }

    /// Writes dirty refcount blocks, then the table that points at them.
    func writeBack() throws(BlockError) {
        for block in blocks.all where block.isDirty { try writeBlock(block) }
        guard table.isDirty else { return }
        try metadata?.refuseIfCorrupt()
        try metadata?.checkWrite(offset: table.offset, size: Int64(table.count) * 8, ignoring: .refcountTable)
        try table.writeBack(to: file)
    }

    private func corruption(_ message: String) -> BlockError {
        metadata?.corruption(message) ?? BlockError("qcow2: Image is corrupt: \(message)", errno: EIO)
    }

    func dropCache() { blocks.removeAll() }

    /// The first run of `count` free clusters from the hint, and the first free cluster seen.
    private func findFreeRun(_ count: Int) throws(BlockError) -> (start: Int64, firstFree: Int64) {
        var start = freeHint
        var cluster = freeHint
        var firstFree: Int64?
        while cluster - start < Int64(count) {
            let index = Int(cluster >> blockBits)
            guard let block = try block(at: index) else {
                // No refcount block: no cluster it would count is in use.
                firstFree = firstFree ?? cluster
                cluster = Int64(index + 1) << blockBits
                continue
            }
            if block[Int(cluster & blockMask)] == 0 {
                firstFree = firstFree ?? cluster
            } else {
                start = cluster + 1
            }
            cluster += 1
        }
        return (start, firstFree ?? start)
    }

    /// Whether every refcount block counting `run` exists; if not, creates one (or grows the table).
    private func blocksExist(for run: Range<Int64>) throws(BlockError) -> Bool {
        for index in Int(run.lowerBound >> blockBits)...Int((run.upperBound - 1) >> blockBits) {
            if index >= table.count {
                try growTable(covering: index)
                return false
            }
            if table[index] == 0 {
                try createBlock(at: index)
                return false
            }
        }
        return true
    }

    /// Moves the refcount table to a bigger one past the end of the image, with new refcount
    /// blocks for the clusters the table and those blocks take (QEMU's qcow2_refcount_area idea).
    private func growTable(covering index: Int) throws(BlockError) {
        let perCluster = clusterSize / 8
        let start = freshFrom
        var entries = max(index + 1, table.count + table.count / 2)
        var tableClusters = 0
        var newBlocks: [Int] = []
        while true {
            tableClusters = (entries + perCluster - 1) / perCluster
            let end = start + Int64(tableClusters + newBlocks.count)
            let ranges = Int(start >> blockBits)...Int((end - 1) >> blockBits)
            let missing = ranges.filter { $0 >= table.count || table[$0] == 0 }
            let needed = max(entries, ranges.upperBound + 1)
            if missing == newBlocks && needed <= tableClusters * perCluster { break }
            newBlocks = missing
            entries = needed
        }
        guard UInt64(tableClusters * clusterSize) <= Qcow2Layout.maxRefcountTableBytes else {
            throw BlockError("qcow2: the image would need a refcount table larger than 8 MiB", errno: EFBIG)
        }
        try metadata?.checkAllocation(start << clusterBits, count: tableClusters + newBlocks.count, what: "refcount table")
        try install(tableAt: start, clusters: tableClusters, newBlocks: newBlocks)
    }

    /// Lays out [new table][new blocks] from cluster `start`, counts them, and switches the header
    /// to the new table once it and every count it relies on are on disk; then frees the old table.
    private func install(tableAt start: Int64, clusters: Int, newBlocks: [Int]) throws(BlockError) {
        let old = table
        let grown = Qcow2Table(offset: start << clusterBits, entries: old.entries)
        grown.extend(to: clusters * clusterSize / 8)
        grown.markDirty(0..<grown.count)
        for (number, index) in newBlocks.enumerated() {
            let cluster = start + Int64(clusters + number)
            try blocks.insert(.empty(offset: cluster << clusterBits, clusterSize: clusterSize, order: order), writeBack: writeBlock)
            grown.set(index, to: UInt64(cluster << clusterBits))
        }
        table = grown
        let end = start + Int64(clusters + newBlocks.count)
        for cluster in start..<end { try change(cluster: cluster, by: 1) }
        freshFrom = max(freshFrom, end)
        try writeBack()
        try file.flushSync()
        try writeHeaderFields(offset: start << clusterBits, clusters: clusters)
        let oldFirst = old.offset >> clusterBits
        for cluster in oldFirst..<oldFirst + Int64(old.count * 8 / clusterSize) { try change(cluster: cluster, by: -1) }
    }

    private func writeHeaderFields(offset: Int64, clusters: Int) throws(BlockError) {
        var fields = [UInt8](repeating: 0, count: 12)
        Qcow2Bytes.put(UInt64(offset), into: &fields, at: 0)
        Qcow2Bytes.put(UInt32(clusters), into: &fields, at: 8)
        try file.writeSync(fields, at: Qcow2Layout.refcountTableFieldOffset)
        try file.flushSync()
    }

    /// A refcount block for range `index`. That range had no block, so none of its clusters is in
    /// use: the block takes the range's first cluster and counts itself.
    private func createBlock(at index: Int) throws(BlockError) {
        let cluster = Int64(index) << blockBits
        // Range 0 always holds the header: with no block counting it, the table is damaged
        // (QEMU's "Preventing invalid allocation of refcount block at offset 0").
        if cluster == 0 { throw corruption("Preventing invalid allocation of refcount block at offset 0") }
        try metadata?.checkAllocation(cluster << clusterBits, what: "refcount block")
        let block = Qcow2RefcountBlock.empty(offset: cluster << clusterBits, clusterSize: clusterSize, order: order)
        block[0] = 1
        try blocks.insert(block, writeBack: writeBlock)
        table.set(index, to: UInt64(cluster << clusterBits))
        freshFrom = max(freshFrom, cluster + 1)
    }

    private func block(at index: Int) throws(BlockError) -> Qcow2RefcountBlock? {
        guard index < table.count else { return nil }
        let offset = Int64(bitPattern: table[index] & Qcow2Layout.refcountBlockMask)
        guard offset != 0 else { return nil }
        if let cached = blocks.get(offset) { return cached }
        guard offset & Int64(clusterSize - 1) == 0 else {
            throw corruption("Refblock offset \(Qcow2Metadata.hex(offset)) unaligned (reftable index: \(Qcow2Metadata.hex(Int64(index))))")
        }
        let block = Qcow2RefcountBlock(offset: offset, bytes: try file.readSync(at: offset, count: clusterSize), order: order)
        try blocks.insert(block, writeBack: writeBlock)
        return block
    }

    private func writeBlock(_ block: Qcow2RefcountBlock) throws(BlockError) {
        guard block.isDirty else { return }
        try metadata?.refuseIfCorrupt()
        try metadata?.checkWrite(offset: block.offset, size: Int64(clusterSize), ignoring: .refcountBlock)
        try block.writeBack(to: file)
    }

    private func lastCountedCluster() throws(BlockError) -> Int64 {
        for index in stride(from: table.count - 1, through: 0, by: -1) {
            guard let block = try block(at: index) else { continue }
            if let last = (0..<(1 << blockBits)).last(where: { block[$0] != 0 }) {
                return Int64(index) << blockBits + Int64(last)
            }
        }
        return -1
    }
}
