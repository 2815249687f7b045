import Glibc

/// One I/O on a host file descriptor, as the `file` driver hands it to an engine.
public struct FileRequest {
    public enum Operation: Sendable { case read, write, fdsync }

    let fd: Int32
    let operation: Operation
    let offset: Int64
    let vector: IoVector
    /// O_DIRECT's boundary: buffers not on it are bounced through an aligned copy.
    let alignment: Int
    let completion: IoCompletion

    /// The iovecs to hand the kernel: the caller's, or one aligned bounce buffer
    /// (already filled for a write). Release with `finish`.
    func prepareBuffers() -> (iovecs: [iovec], bounce: UnsafeMutableRawBufferPointer?) {
        guard let bounce = makeBounceBuffer() else { return (vector.segments, nil) }
        return ([iovec(iov_base: bounce.baseAddress, iov_len: bounce.count)], bounce)
    }

    /// An aligned copy of the caller's buffers (already filled for a write) when they are not on
    /// O_DIRECT's boundary; nil when they go to the kernel as they are. Release with `finish`.
    func makeBounceBuffer() -> UnsafeMutableRawBufferPointer? {
        guard operation != .fdsync, !vector.isAligned(to: alignment) else { return nil }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: vector.totalLength, alignment: 4096)
        if operation == .write { vector.gather(into: buffer) }
        return buffer
    }

    /// Turns the kernel's result (bytes, or -errno) into the request's outcome, copies a bounced
    /// read back and frees the bounce buffer.
    func finish(result: Int64, bounce: UnsafeMutableRawBufferPointer?) -> Result<Int, BlockError> {
        defer { bounce?.deallocate() }
        if result < 0 {
            let verb = switch operation { case .read: "read"; case .write: "write"; case .fdsync: "flush" }
            return .failure(.posix("\(verb) at offset \(offset)", errno: Int32(-result)))
        }
        let expected = operation == .fdsync ? 0 : vector.totalLength
        if Int(result) < expected && operation == .write {
            // qemu_laio_process_completion: a short write is a full disk.
            return .failure(.posix("write at offset \(offset)", errno: ENOSPC))
        }
        if operation == .read {
            // A read past the end of the file reads zeroes, as in QEMU's file driver.
            if let bounce {
                (bounce.baseAddress! + Int(result)).initializeMemory(as: UInt8.self, repeating: 0, count: bounce.count - Int(result))
                vector.scatter(from: UnsafeRawBufferPointer(bounce))
            } else if Int(result) < expected {
                vector.zero(from: Int(result))
            }
        }
        return .success(max(Int(result), expected))
    }
}
