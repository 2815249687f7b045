extension Qcow2Driver {
    /// The byte ranges this image defines itself (data or zero clusters), not its backing file:
    /// what `sync: top` copies (bdrv_is_allocated on each cluster, as mirror_dirty_init asks).
    func topAllocatedRanges() throws(BlockError) -> [MirrorRange] {
        let clusterSize = Int64(1) << Int64(clusterBits)
        let total = length
        var ranges: [MirrorRange] = []
        var cluster: Int64 = 0
        while cluster * clusterSize < total {
            if try metadata.state(ofGuestCluster: cluster) != .unallocated {
                let start = cluster * clusterSize
                let range = MirrorRange(offset: start, length: min(clusterSize, total - start))
                if let last = ranges.last, last.end == range.offset {
                    ranges[ranges.count - 1] = MirrorRange(offset: last.offset, length: last.length + range.length)
                } else {
                    ranges.append(range)
                }
            }
            cluster += 1
        }
        return ranges
    }
}
