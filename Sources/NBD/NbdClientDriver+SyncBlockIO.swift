import Block
import Glibc

/// Blocking round trips for format drivers' metadata (qcow2 over nbd): the request goes out like
/// any other, then the loop serves only the block layer until its reply is in. Other requests in
/// flight progress meanwhile, and so does a server on the same event loop.
extension NbdClientDriver: SyncBlockIO {
    public func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 4096)
        defer { buffer.deallocate() }
        let vector = IoVector(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
        try wait { read(at: offset, into: vector, completion: $0) }
        bytes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
        return bytes
    }

    public func writeSync(_ bytes: [UInt8], at offset: Int64) throws(BlockError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 4096)
        defer { buffer.deallocate() }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        let vector = IoVector(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count]))
        try wait { write(at: offset, from: vector, completion: $0) }
    }

    public func flushSync() throws(BlockError) {
        try wait { flush(completion: $0) }
    }

    /// NBD exports have a fixed size (QEMU's nbd_co_truncate).
    public func truncateSync(to newLength: Int64) throws(BlockError) {
        if newLength == length { return }
        if newLength > length { throw BlockError("Cannot grow NBD nodes", errno: EINVAL) }
        throw BlockError("Cannot resize NBD nodes", errno: ENOTSUP)
    }

    /// Starts `operation` and runs the block layer's handlers until it completes (QEMU's
    /// AIO_WAIT_WHILE): this connection's replies, and an NBD server of this same process that
    /// has to answer it.
    private func wait(_ operation: (@escaping IoCompletion) -> Void) throws(BlockError) {
        var outcome: Result<Int, BlockError>?
        operation { outcome = $0 }
        while outcome == nil {
            guard !channel.isClosed else { throw Self.connectionLost }
            watcher.pollBlockLayer(timeoutMilliseconds: 1000)
        }
        if case .failure(let error) = outcome { throw error }
    }
}
