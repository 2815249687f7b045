import Glibc

/// The `raw` format: the child's bytes as they are, optionally a window [offset, offset+size).
public final class RawDriver: BlockDriver {
    public private(set) var child: BlockDriver
    public let offset: Int64
    private let size: Int64?

    public init(child: BlockDriver, offset: Int64 = 0, size: Int64? = nil) throws(BlockError) {
        guard offset >= 0, offset <= child.length else {
            throw BlockError("The sum of offset (\(offset)) and size (0) has to be smaller or equal to the  actual size of the containing file (\(child.length))", errno: EINVAL)
        }
        if let size, offset + size > child.length {
            throw BlockError("The sum of offset (\(offset)) and size (\(size)) has to be smaller or equal to the  actual size of the containing file (\(child.length))", errno: EINVAL)
        }
        self.child = child
        self.offset = offset
        self.size = size
    }

    /// Without offset/size, raw is a filter (QEMU: BDRV_CHILD_FILTERED); with them, a data child.
    public var isFilter: Bool { offset == 0 && size == nil }
    public var length: Int64 { size ?? (child.length - offset) }
    public var isReadOnly: Bool { child.isReadOnly }

    public func plug() { child.plug() }
    public func unplug() { child.unplug() }

    public func read(at position: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        child.read(at: offset + position, into: vector, completion: completion)
    }

    public func write(at position: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        child.write(at: offset + position, from: vector, completion: completion)
    }

    public func flush(completion: @escaping IoCompletion) { child.flush(completion: completion) }

    public func discard(at position: Int64, length: Int64, completion: @escaping IoCompletion) {
        child.discard(at: offset + position, length: length, completion: completion)
    }

    public func writeZeroes(at position: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        child.writeZeroes(at: offset + position, length: length, mayUnmap: mayUnmap, completion: completion)
    }
}
