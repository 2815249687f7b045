import Glibc

extension Qcow2Metadata {
    /// The metadata a write of `size` bytes at host `offset` would land on, if any, checking every
    /// kind except `ignoring` (the structure being written itself). QEMU's
    /// qcow2_check_metadata_overlap in its default "cached" mode: everything but inactive L2
    /// tables, which would have to be read to be known.
    func overlap(offset: Int64, size: Int64, ignoring: Qcow2MetadataOverlap = []) -> Qcow2MetadataOverlap? {
        guard size > 0 else { return nil }
        if !ignoring.contains(.mainHeader) && offset < Int64(clusterSize) { return .mainHeader }
        // Whole clusters, as QEMU aligns the range: metadata never shares a cluster with anything.
        let mask = Int64(clusterSize - 1)
        let start = offset & ~mask
        let end = Self.saturatingEnd(offset, size).map { $0 > Int64.max - mask ? Int64.max : ($0 + mask) & ~mask } ?? .max
        func hits(_ tableOffset: Int64, _ tableBytes: Int64) -> Bool {
            tableBytes > 0 && tableOffset < end && start < (Self.saturatingEnd(tableOffset, tableBytes) ?? .max)
        }
        if !ignoring.contains(.activeL1) && hits(l1.offset, Int64(l1.count) * 8) { return .activeL1 }
        if !ignoring.contains(.refcountTable) && hits(refcounts.table.offset, Int64(refcounts.table.count) * 8) { return .refcountTable }
        if !ignoring.contains(.snapshotTable) && hits(snapshots.offset, snapshots.byteCount) { return .snapshotTable }
        if !ignoring.contains(.inactiveL1) && snapshots.l1Tables.contains(where: { hits($0.offset, $0.byteCount) }) {
            return .inactiveL1
        }
        let clusters = (start >> clusterBits)..<(end >> clusterBits)
        if !ignoring.contains(.activeL2) && overlapIndex.l2Clusters(of: l1, clusterBits: clusterBits).contains(clusters) { return .activeL2 }
        if !ignoring.contains(.refcountBlock) && overlapIndex.blockClusters(of: refcounts.table, clusterBits: clusterBits).contains(clusters) {
            return .refcountBlock
        }
        return nil
    }

    /// Refuses a write that would land on metadata, marking the image corrupt (QEMU's
    /// qcow2_pre_write_overlap_check).
    func checkWrite(offset: Int64, size: Int64, ignoring: Qcow2MetadataOverlap = []) throws(BlockError) {
        guard let what = overlap(offset: offset, size: size, ignoring: ignoring) else { return }
        throw corruption("Preventing invalid write on metadata (overlaps with \(what.name))", offset: offset, size: size)
    }

    /// A cluster the allocator handed out for `what` must be free of metadata: a refcount of zero
    /// on a header, table or block means the counts lie (QEMU's "Preventing invalid allocation
    /// of ... at offset 0" in l2_allocate, and the overlap check before the first write there).
    func checkAllocation(_ offset: Int64, count: Int = 1, what: String) throws(BlockError) {
        if offset == 0 { throw corruption("Preventing invalid allocation of \(what) at offset 0") }
        try checkWrite(offset: offset, size: Int64(count) << clusterBits)
    }

    static func saturatingEnd(_ offset: Int64, _ size: Int64) -> Int64? {
        let (end, overflow) = offset.addingReportingOverflow(size)
        return overflow ? nil : end
    }
}
