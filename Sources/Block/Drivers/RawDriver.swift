import Glibc

/// The `raw` format: its `file` child's bytes as they are, optionally a window [offset, offset+size).
public final class RawDriver: BlockDriver {
    public let file: BdrvChild
    public let offset: Int64
    private let size: Int64?

    /// raw_apply_options: the window must lie inside the child, in QEMU's words.
    public init(file: BdrvChild, offset: Int64 = 0, size: Int64? = nil) throws(BlockError) {
        let available = file.length
        let (end, overflow) = offset.addingReportingOverflow(size ?? 0)
        guard offset >= 0, size ?? 0 >= 0, !overflow, end <= available, offset <= available else {
            throw BlockError("The sum of offset (\(offset)) and size (\(size ?? 0)) has to be smaller or equal to the  actual size of the containing file (\(available))", errno: EINVAL)
        }
        if let size, size % 512 != 0 {
            throw BlockError("Specified size is not multiple of 512", errno: EINVAL)
        }
        self.file = file
        self.offset = offset
        self.size = size
    }

    /// Without offset/size, raw is a filter (QEMU: BDRV_CHILD_FILTERED); with them, a data child.
    public var isFilter: Bool { offset == 0 && size == nil }
    public var length: Int64 { size ?? max(0, file.length - offset) }
    public var isReadOnly: Bool { file.node.readOnly }

    public func plug() { file.plug() }
    public func unplug() { file.unplug() }

    public func read(at position: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        file.raise(.readAio)  // raw_co_preadv's BLKDBG_READ_AIO
        file.read(at: offset + position, into: vector, completion: completion)
    }

    public func write(at position: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        file.raise(.writeAio)  // raw_co_pwritev's BLKDBG_WRITE_AIO
        file.write(at: offset + position, from: vector, completion: completion)
    }

    public func flush(completion: @escaping IoCompletion) { file.flush(completion: completion) }

    public func discard(at position: Int64, length: Int64, completion: @escaping IoCompletion) {
        file.discard(at: offset + position, length: length, completion: completion)
    }

    public func writeZeroes(at position: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        file.writeZeroes(at: offset + position, length: length, mayUnmap: mayUnmap, completion: completion)
    }
}
