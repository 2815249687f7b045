import Glibc

/// What a device (or, later, an export) holds to do I/O on a node: QEMU's BlockBackend.
/// The permission model arrives with the node graph; for now it enforces read-only.
public final class BlockBackend {
    public let driver: BlockDriver

    public init(driver: BlockDriver) {
        self.driver = driver
    }

    public var length: Int64 { driver.length }
    public var isReadOnly: Bool { driver.isReadOnly }

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        guard checkRange(offset, Int64(vector.totalLength), completion) else { return }
        driver.read(at: offset, into: vector, completion: completion)
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        guard checkWritable(completion), checkRange(offset, Int64(vector.totalLength), completion) else { return }
        driver.write(at: offset, from: vector, completion: completion)
    }

    public func plug() { driver.plug() }
    public func unplug() { driver.unplug() }

    public func flush(completion: @escaping IoCompletion) {
        driver.flush(completion: completion)
    }

    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        guard checkWritable(completion), checkRange(offset, length, completion) else { return }
        driver.discard(at: offset, length: length, completion: completion)
    }

    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        guard checkWritable(completion), checkRange(offset, length, completion) else { return }
        driver.writeZeroes(at: offset, length: length, mayUnmap: mayUnmap, completion: completion)
    }

    private func checkWritable(_ completion: IoCompletion) -> Bool {
        if driver.isReadOnly {
            completion(.failure(BlockError("Block node is read-only", errno: EPERM)))
            return false
        }
        return true
    }

    private func checkRange(_ offset: Int64, _ length: Int64, _ completion: IoCompletion) -> Bool {
        let (end, overflow) = offset.addingReportingOverflow(length)
        if offset < 0 || length < 0 || overflow || end > driver.length {
            completion(.failure(BlockError("request [\(offset), +\(length)) is beyond the end of the disk", errno: EINVAL)))
            return false
        }
        return true
    }
}
