import Glibc

/// Format drivers' blocking metadata I/O goes through their edge too, so it follows graph changes,
/// is refused without WRITE, and marks dirty bitmaps on the node below.
extension BdrvChild: SyncBlockIO {
    private var syncDriver: SyncBlockIO {
        get throws(BlockError) {
            guard let driver = node.driver as? SyncBlockIO else {
                throw BlockError("Node '\(node.nodeName)' (\(node.driverName)) cannot hold an image's metadata", errno: ENOTSUP)
            }
            return driver
        }
    }

    public func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8] {
        try syncDriver.readSync(at: offset, count: count)
    }

    public func writeSync(_ bytes: [UInt8], at offset: Int64) throws(BlockError) {
        try requireWrite()
        try syncDriver.writeSync(bytes, at: offset)
        node.markDirty(offset: offset, length: Int64(bytes.count))
    }

    public func flushSync() throws(BlockError) {
        try syncDriver.flushSync()
    }

    public func truncateSync(to length: Int64) throws(BlockError) {
        guard perm.contains(.resize) else {
            throw BlockError("Permission 'resize' not held on node '\(node.nodeName)' by \(userDescription)", errno: EPERM)
        }
        try syncDriver.truncateSync(to: length)
    }

    private func requireWrite() throws(BlockError) {
        guard perm.contains(.write) else {
            throw BlockError(node.isWritable ? "Permission 'write' not held on node '\(node.nodeName)' by \(userDescription)"
                                             : "Block node is read-only", errno: EPERM)
        }
    }
}
