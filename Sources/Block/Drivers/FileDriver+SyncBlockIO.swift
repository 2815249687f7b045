import CKVM
import Glibc

extension FileDriver: SyncBlockIO {
    /// Reads through an aligned buffer that covers the range on O_DIRECT's boundaries.
    public func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8] {
        guard count > 0 else { return [] }
        let (start, buffer) = try alignedRead(offset: offset, count: count)
        defer { buffer.deallocate() }
        let skip = Int(offset - start)
        return Array(buffer[skip..<skip + count])
    }

    /// Writes with read-modify-write of the partial blocks at either end when O_DIRECT needs it.
    public func writeSync(_ bytes: [UInt8], at offset: Int64) throws(BlockError) {
        guard !bytes.isEmpty else { return }
        guard !options.readOnly else { throw BlockError("Block node is read-only", errno: EPERM) }
        let (start, buffer) = try alignedRead(offset: offset, count: bytes.count)
        defer { buffer.deallocate() }
        let skip = Int(offset - start)
        buffer[skip..<skip + bytes.count].copyBytes(from: bytes)
        try transfer(buffer, at: start, write: true)
        length = max(length, offset + Int64(bytes.count))
    }

    public func flushSync() throws(BlockError) {
        if fdatasync(fd) != 0 { throw BlockError.posix("flush", errno: errno) }
    }

    public func truncateSync(to newLength: Int64) throws(BlockError) {
        if ftruncate(fd, off_t(newLength)) != 0 { throw BlockError.posix("truncate to \(newLength)", errno: errno) }
        length = newLength
    }

    private func alignedRead(offset: Int64, count: Int) throws(BlockError) -> (Int64, UnsafeMutableRawBufferPointer) {
        let block = Int64(syncAlignment)
        let start = offset / block * block
        let end = (offset + Int64(count) + block - 1) / block * block
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(end - start), alignment: 4096)
        do {
            try transfer(buffer, at: start, write: false)
        } catch {
            buffer.deallocate()
            throw error
        }
        return (start, buffer)
    }

    /// Moves the whole buffer; reads past the end of the file give zeroes.
    private func transfer(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int64, write: Bool) throws(BlockError) {
        var done = 0
        while done < buffer.count {
            let pointer = buffer.baseAddress! + done
            let remaining = buffer.count - done
            let result = write ? pwrite(fd, pointer, remaining, off_t(offset) + done)
                               : pread(fd, pointer, remaining, off_t(offset) + done)
            if result < 0 {
                if errno == EINTR { continue }
                throw BlockError.posix(write ? "write at offset \(offset)" : "read at offset \(offset)", errno: errno)
            }
            if result == 0 {
                guard !write else { throw BlockError("short write at offset \(offset)", errno: EIO) }
                pointer.initializeMemory(as: UInt8.self, repeating: 0, count: remaining)
                return
            }
            // A short read of a regular file is its end (another process may be growing it, as a
            // migration source does): the rest reads as zeroes. Reading on from an unaligned
            // position would fail under O_DIRECT with EINVAL.
            if !write && result < remaining {
                (pointer + result).initializeMemory(as: UInt8.self, repeating: 0, count: remaining - result)
                return
            }
            done += result
        }
    }
}
