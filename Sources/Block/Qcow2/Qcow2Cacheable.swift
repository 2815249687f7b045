/// A metadata cluster (L2 table or refcount block) that `Qcow2Cache` can keep in memory.
protocol Qcow2Cacheable: AnyObject {
    /// Where the cluster lives in the image file; the cache key.
    var offset: Int64 { get }
    var lastUse: Int { get set }
    var isDirty: Bool { get }
    /// Must stay in memory: it holds changes that cannot reach the disk yet.
    var isPinned: Bool { get }
}
