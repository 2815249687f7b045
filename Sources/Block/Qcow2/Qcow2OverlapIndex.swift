/// The host clusters that hold active L2 tables and refcount blocks, as sets rebuilt only when
/// the L1 or refcount table changed: QEMU walks both tables on every write, which is the same
/// answer at a cost per write that grows with the image.
final class Qcow2OverlapIndex {
    private var l2Key: (table: ObjectIdentifier, generation: Int)?
    private var l2Set = ClusterSet()
    private var blockKey: (table: ObjectIdentifier, generation: Int)?
    private var blockSet = ClusterSet()

    struct ClusterSet {
        fileprivate var clusters: Set<Int64> = []

        func contains(_ range: Range<Int64>) -> Bool {
            guard !clusters.isEmpty else { return false }
            // A range wider than the set: test the set's members instead of the range's.
            if range.count > clusters.count { return clusters.contains { range.contains($0) } }
            return range.contains { clusters.contains($0) }
        }
    }

    func l2Clusters(of l1: Qcow2Table, clusterBits: Int) -> ClusterSet {
        let key = (ObjectIdentifier(l1), l1.generation)
        if l2Key?.table != key.0 || l2Key?.generation != key.1 {
            l2Set = Self.clusters(of: l1, mask: Qcow2Layout.offsetMask, clusterBits: clusterBits)
            l2Key = key
        }
        return l2Set
    }

    func blockClusters(of refcountTable: Qcow2Table, clusterBits: Int) -> ClusterSet {
        let key = (ObjectIdentifier(refcountTable), refcountTable.generation)
        if blockKey?.table != key.0 || blockKey?.generation != key.1 {
            blockSet = Self.clusters(of: refcountTable, mask: Qcow2Layout.refcountBlockMask, clusterBits: clusterBits)
            blockKey = key
        }
        return blockSet
    }

    private static func clusters(of table: Qcow2Table, mask: UInt64, clusterBits: Int) -> ClusterSet {
        var set = ClusterSet()
        for index in 0..<table.count {
            let offset = table[index] & mask
            if offset != 0 { set.clusters.insert(Int64(offset >> UInt64(clusterBits))) }
        }
        return set
    }
}
