import Glibc

extension Qcow2Metadata {
    /// Makes a guest cluster writable: in place if it has its own data cluster; otherwise it gets
    /// one (new, or its preallocated zero cluster) whose L2 entry changes in memory now and on
    /// disk at `commit`. `wholeCluster`: the write covers all of it, so nothing needs copying.
    func prepareWrite(guestCluster cluster: Int64, wholeCluster: Bool) throws(BlockError) -> Qcow2WriteTarget {
        let table = try writableL2(at: Int(cluster >> l2Bits))
        let index = Int(cluster & l2Mask)
        let entry = table[index]
        let state = try state(of: table, index: index)
        // Every data write is checked against the metadata first (QEMU's qcow2_co_pwritev_task
        // calls qcow2_pre_write_overlap_check): a mapping onto a table must not clobber it.
        if case .data(let host, copied: true) = state {
            try checkWrite(offset: host, size: Int64(clusterSize))
            return .inPlace(host: host)
        }
        if state == .compressed && !wholeCluster { throw Self.compressedCluster(cluster << clusterBits) }
        if case .zero(let preallocated?) = state, entry & Qcow2Layout.copiedFlag != 0 {
            try checkWrite(offset: preallocated, size: Int64(clusterSize))
            table.setPending(index, to: UInt64(preallocated) | Qcow2Layout.copiedFlag)
            return .allocated(Qcow2Allocation(guestCluster: cluster, table: table, index: index, host: preallocated, fresh: false,
                                              newlyAllocated: false, source: .zeroes, releasedEntry: nil))
        }
        let (host, fresh) = try refcounts.allocate(count: 1)
        try checkAllocation(host, what: "data cluster")
        table.setPending(index, to: UInt64(host) | Qcow2Layout.copiedFlag)
        return .allocated(Qcow2Allocation(guestCluster: cluster, table: table, index: index, host: host, fresh: fresh,
                                          newlyAllocated: true, source: Self.source(of: state),
                                          releasedEntry: state.isAllocated ? entry : nil))
    }

    private static func source(of state: Qcow2ClusterState) -> Qcow2Allocation.Source {
        switch state {
        case .unallocated: .backing
        case .data(let host, _): .host(host)
        case .zero, .compressed: .zeroes
        }
    }

    static func compressedCluster(_ guestOffset: Int64) -> BlockError {
        BlockError("qcow2: compressed clusters are not supported (guest offset \(guestOffset)); convert the image with 'qemu-img convert -O qcow2' first", errno: ENOTSUP)
    }

    /// The data write of an allocation landed: its L2 entry may reach the disk.
    func commit(_ allocation: Qcow2Allocation) {
        allocation.table.commit(allocation.index)
        if let entry = allocation.releasedEntry { release(entry: entry) }
    }

    /// The data write failed: the guest keeps seeing the old cluster. The new cluster's count can
    /// drop at once, since no table on disk points at it.
    func rollback(_ allocation: Qcow2Allocation) throws(BlockError) {
        allocation.table.revert(allocation.index)
        if allocation.newlyAllocated { try refcounts.change(cluster: allocation.host >> clusterBits, by: -1) }
    }

    /// The L2 table for `l1Index`, made the image's own: a new one if there is none, a copy if it
    /// is shared with an internal snapshot (L1 entry without the copied flag).
    func writableL2(at l1Index: Int) throws(BlockError) -> Qcow2Table {
        let entry = l1[l1Index]
        let existing = try l2Table(at: l1Index)
        if let existing, entry & Qcow2Layout.copiedFlag != 0 { return existing }
        let (offset, _) = try refcounts.allocate(count: 1)
        try checkAllocation(offset, what: "L2 table")
        let entries = existing?.entries ?? [UInt64](repeating: 0, count: clusterSize / 8)
        let table = Qcow2Table(offset: offset, entries: entries, dirty: true)
        try cache(table)
        l1.set(l1Index, to: UInt64(offset) | Qcow2Layout.copiedFlag)
        if let existing { pendingReleases.append((existing.offset, releaseTag)) }
        return table
    }

    /// One reference less for every host cluster an L2 entry pointed at, applied by `writeBack`
    /// after the entry's change is on disk.
    func release(entry: UInt64) {
        guard entry & Qcow2Layout.compressedFlag != 0 else {
            let host = Int64(entry & Qcow2Layout.offsetMask)
            if host != 0 { pendingReleases.append((host, releaseTag)) }
            return
        }
        // Compressed: bits 0..<shift are the byte offset, the rest the count of extra 512-byte sectors.
        let shift = UInt64(62 - (clusterBits - 8))
        let offset = Int64(entry & ((1 << shift) - 1)) & ~511
        let sectors = Int64((entry >> shift) & ((1 << UInt64(clusterBits - 8)) - 1)) + 1
        for cluster in (offset >> clusterBits)...((offset + sectors * 512 - 1) >> clusterBits) {
            pendingReleases.append((cluster << clusterBits, releaseTag))
        }
    }

    /// Whole guest clusters read as zeroes from now on (version 3 zero flag); with `unmap` their
    /// data clusters are freed, otherwise kept as preallocated (QEMU's zero_in_l2_slice).
    func zero(clusters: Range<Int64>, unmap: Bool, hasBacking: Bool) throws(BlockError) {
        // Without a backing file, a cluster in no L2 table already reads as zeroes.
        try rewrite(clusters, allocatingTables: hasBacking) { entry in
            let state = Qcow2ClusterState(entry: entry)
            let drop = state == .compressed || (unmap && state.isAllocated)
            return ((drop ? 0 : entry) | Qcow2Layout.zeroFlag, drop)
        }
    }

    /// Whole guest clusters lose their data; they read as zeroes (version 3) where a backing file
    /// or an allocation would otherwise show through (QEMU's discard_in_l2_slice, not full_discard).
    func discard(clusters: Range<Int64>, hasBacking: Bool) throws(BlockError) {
        let version3 = header.version >= 3
        try rewrite(clusters, allocatingTables: hasBacking && version3) { entry in
            let allocated = Qcow2ClusterState(entry: entry).isAllocated
            guard hasBacking || allocated else { return (entry, false) }
            return (version3 ? Qcow2Layout.zeroFlag : 0, allocated)
        }
    }

    /// Replaces the L2 entries of `clusters` with `transform(old)` = (new entry, release old's clusters).
    private func rewrite(_ clusters: Range<Int64>, allocatingTables: Bool,
                         _ transform: (UInt64) -> (UInt64, Bool)) throws(BlockError) {
        var cluster = clusters.lowerBound
        while cluster < clusters.upperBound {
            let l1Index = Int(cluster >> l2Bits)
            let end = min(clusters.upperBound, Int64(l1Index + 1) << l2Bits)
            if allocatingTables || l1[l1Index] & Qcow2Layout.offsetMask != 0 {
                let table = try writableL2(at: l1Index)
                for index in Int(cluster & l2Mask)..<Int(cluster & l2Mask) + Int(end - cluster) {
                    _ = try state(of: table, index: index)
                    let old = table[index]
                    let (new, releases) = transform(old)
                    guard new != old else { continue }
                    table.set(index, to: new)
                    if releases { release(entry: old) }
                }
            }
            cluster = end
        }
    }
}
