/// What a standard L2 entry says about one guest cluster.
enum Qcow2ClusterState: Equatable {
    /// Reads from the backing file (or zeroes without one).
    case unallocated
    /// Reads as zeroes; `host` is a preallocated cluster kept for later writes.
    case zero(host: Int64?)
    /// Data in the host cluster; `copied`: its refcount is one, so it may be written in place.
    case data(host: Int64, copied: Bool)
    case compressed

    init(entry: UInt64) {
        let host = Int64(entry & Qcow2Layout.offsetMask)
        if entry & Qcow2Layout.compressedFlag != 0 {
            self = .compressed
        } else if entry & Qcow2Layout.zeroFlag != 0 {
            self = .zero(host: host == 0 ? nil : host)
        } else if host == 0 {
            self = .unallocated
        } else {
            self = .data(host: host, copied: entry & Qcow2Layout.copiedFlag != 0)
        }
    }

    /// Whether the entry holds a reference to host clusters (QEMU's qcow2_cluster_is_allocated).
    var isAllocated: Bool {
        switch self {
        case .unallocated, .zero(host: nil): false
        case .zero, .data, .compressed: true
        }
    }
}
