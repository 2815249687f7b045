/// Where a write to one guest cluster goes.
enum Qcow2WriteTarget {
    /// The cluster's own data cluster (refcount one): write in place.
    case inPlace(host: Int64)
    case allocated(Qcow2Allocation)
}
