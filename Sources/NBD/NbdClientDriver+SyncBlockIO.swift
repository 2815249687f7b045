import Block
import Glibc

/// Blocking round trips for format drivers' metadata (qcow2 over nbd): the request goes out like
/// any other, then this thread polls the socket until its reply is in. Other requests in flight
/// progress meanwhile. Not for a server running on the same event loop (it could not answer).
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

    /// Starts `operation` and drives the socket until it completes.
    private func wait(_ operation: (@escaping IoCompletion) -> Void) throws(BlockError) {
        var outcome: Result<Int, BlockError>?
        operation { outcome = $0 }
        while outcome == nil {
            guard !channel.isClosed else { throw Self.connectionLost }
            pollOnce()
        }
        if case .failure(let error) = outcome { throw error }
    }

    private func pollOnce() {
        var events = Int16(POLLIN)
        if channel.pendingOutputBytes > 0 { events |= Int16(POLLOUT) }
        var descriptor = pollfd(fd: channel.fd, events: events, revents: 0)
        guard poll(&descriptor, 1, 1000) > 0 else { return }
        var ready: FdInterest = []
        if descriptor.revents & Int16(POLLIN) != 0 { ready.insert(.readable) }
        if descriptor.revents & Int16(POLLOUT) != 0 { ready.insert(.writable) }
        if descriptor.revents & Int16(POLLHUP | POLLERR) != 0 { ready.insert([.hangup, .readable]) }
        channel.handle(ready)
    }
}
