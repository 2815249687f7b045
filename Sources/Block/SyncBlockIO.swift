/// Blocking byte-range I/O on a protocol node, for format drivers' metadata (qcow2 headers,
/// L1/L2 and refcount tables). It runs on the event-loop thread and blocks it briefly; guest data
/// never goes this way.
public protocol SyncBlockIO: AnyObject {
    func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8]
    func writeSync(_ bytes: [UInt8], at offset: Int64) throws(BlockError)
    func flushSync() throws(BlockError)
    /// Grows or shrinks the file (qcow2 image creation and preallocation).
    func truncateSync(to length: Int64) throws(BlockError)
}
