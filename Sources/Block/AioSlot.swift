import CKVM
import Glibc

/// One in-flight libaio request: its iocb, the iovecs the kernel reads at submit time,
/// and a bounce buffer when the guest's buffers are not aligned for O_DIRECT.
final class AioSlot {
    enum Operation { case read, write, fdsync }

    struct Request {
        let fd: Int32
        let operation: Operation
        let offset: Int64
        let vector: IoVector
        let alignment: Int
        let completion: IoCompletion
    }

    let index: Int
    let iocb: UnsafeMutablePointer<iocb>
    private var request: Request?
    private var iovecs: [iovec] = []
    private var bounce: UnsafeMutableRawBufferPointer?

    init(index: Int) {
        self.index = index
        iocb = .allocate(capacity: 1)
        iocb.initialize(to: CKVM.iocb())
    }

    deinit { iocb.deallocate() }

    func start(_ request: Request, eventFd: Int32) {
        self.request = request
        iovecs = request.vector.segments
        if request.operation != .fdsync && !request.vector.isAligned(to: request.alignment) {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: request.vector.totalLength, alignment: 4096)
            if request.operation == .write { request.vector.gather(into: buffer) }
            bounce = buffer
            iovecs = [iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)]
        }
        iovecs.withUnsafeBufferPointer { vectors in
            switch request.operation {
            case .read: io_prep_preadv(iocb, request.fd, vectors.baseAddress, Int32(vectors.count), request.offset)
            case .write: io_prep_pwritev(iocb, request.fd, vectors.baseAddress, Int32(vectors.count), request.offset)
            case .fdsync: io_prep_fdsync(iocb, request.fd)
            }
        }
        // The kernel copies the iovec array during io_submit; `iovecs` keeps it alive until then.
        io_set_eventfd(iocb, eventFd)
        iocb.pointee.data = UnsafeMutableRawPointer(bitPattern: index)
    }

    /// Ends the request with the kernel's result (bytes, or -errno) and returns the callback to run.
    func complete(result: Int64) -> () -> Void {
        guard let request else { return {} }
        defer {
            bounce?.deallocate()
            bounce = nil
            self.request = nil
        }
        let outcome = outcome(of: request, result: result)
        if request.operation == .read, let bounce, case .success = outcome {
            request.vector.scatter(from: UnsafeRawBufferPointer(bounce))
        }
        let completion = request.completion
        return { completion(outcome) }
    }

    private func outcome(of request: Request, result: Int64) -> Result<Int, BlockError> {
        if result < 0 {
            let code = Int32(-result)
            let verb = switch request.operation { case .read: "read"; case .write: "write"; case .fdsync: "flush" }
            return .failure(.posix("\(verb) at offset \(request.offset)", errno: code))
        }
        let expected = request.operation == .fdsync ? 0 : request.vector.totalLength
        if Int(result) < expected {
            if request.operation == .read {
                zeroTail(of: request, from: Int(result))
                return .success(expected)
            }
            return .failure(BlockError("short write at offset \(request.offset)", errno: EIO))
        }
        return .success(Int(result))
    }

    /// A read past the end of the file reads zeroes, as in QEMU's file driver.
    private func zeroTail(of request: Request, from start: Int) {
        if let bounce {
            (bounce.baseAddress! + start).initializeMemory(as: UInt8.self, repeating: 0, count: bounce.count - start)
            return
        }
        var position = 0
        for segment in request.vector.segments {
            let segmentStart = max(start - position, 0)
            if segmentStart < segment.iov_len {
                (segment.iov_base! + segmentStart).initializeMemory(as: UInt8.self, repeating: 0, count: segment.iov_len - segmentStart)
            }
            position += segment.iov_len
        }
    }
}
