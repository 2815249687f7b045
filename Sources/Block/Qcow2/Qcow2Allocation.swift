/// A guest cluster getting a host cluster of its own for a write. Its L2 entry already holds the
/// new value in memory; the disk gets it at commit, after the data write.
struct Qcow2Allocation {
    /// What the rest of the cluster must hold around the written bytes: what the guest saw before.
    enum Source: Equatable {
        case zeroes
        case backing
        case host(Int64)
    }

    let guestCluster: Int64
    let table: Qcow2Table
    let index: Int
    let host: Int64
    /// Never used before, so it reads as zeroes without being written.
    let fresh: Bool
    /// A reference was taken for this write (rolled back if the write fails).
    let newlyAllocated: Bool
    let source: Source
    /// The old L2 entry, whose host clusters lose a reference at commit (shared or compressed data).
    let releasedEntry: UInt64?
}
