/// What a node's driver does with I/O. Requests are started and completed on the event-loop thread.
public protocol BlockDriver: AnyObject {
    /// The size in bytes the node presents.
    var length: Int64 { get }
    var isReadOnly: Bool { get }
    /// QEMU's is_filter / BDRV_CHILD_FILTERED: the node shows its one child's data unchanged, so
    /// graph queries and snapshot checks look through it.
    var isFilter: Bool { get }
    func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion)
    func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion)
    func flush(completion: @escaping IoCompletion)
    /// Whether `flush` first writes cached metadata through its child and raises `flush_to_disk`
    /// on it itself after that (qcow2: QEMU's flush_to_os step comes before that event).
    var raisesFlushToDisk: Bool { get }
    /// Drops the data in the range (reads may then return zeroes or old data).
    func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion)
    /// Makes the range read as zeroes; `mayUnmap` allows freeing the space.
    func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion)
    /// Requests between `plug()` and `unplug()` may be batched into one submission.
    func plug()
    func unplug()
    /// Whether the node can take `perm` and let others take `shared` (image locks held by other processes).
    func checkPermissions(_ perm: BlockPermission, shared: BlockPermission) throws(BlockError)
    /// Makes a checked permission state real (takes or drops image locks).
    func applyPermissions(_ perm: BlockPermission, shared: BlockPermission)
    /// Write back cached metadata and stop writing: another process takes over the image.
    func inactivate() throws(BlockError)
    /// Re-read metadata another process may have changed.
    func activate() throws(BlockError)
}

extension BlockDriver {
    public var isFilter: Bool { false }
    public var raisesFlushToDisk: Bool { false }
    public func plug() {}
    public func unplug() {}
    public func checkPermissions(_ perm: BlockPermission, shared: BlockPermission) throws(BlockError) {}
    public func applyPermissions(_ perm: BlockPermission, shared: BlockPermission) {}
    public func inactivate() throws(BlockError) {}
    public func activate() throws(BlockError) {}
}
