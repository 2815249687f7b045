import CKVM
import Glibc

/// One in-flight libaio request: its iocb, the iovecs the kernel reads at submit time,
/// and a bounce buffer when the guest's buffers are not aligned for O_DIRECT.
final class AioSlot {
    let index: Int
    let iocb: UnsafeMutablePointer<iocb>
    private var request: FileRequest?
    private var iovecs: [iovec] = []
    private var bounce: UnsafeMutableRawBufferPointer?

    init(index: Int) {
        self.index = index
        iocb = .allocate(capacity: 1)
        iocb.initialize(to: CKVM.iocb())
    }

    deinit { iocb.deallocate() }

    func start(_ request: FileRequest, eventFd: Int32) {
        self.request = request
        (iovecs, bounce) = request.prepareBuffers()
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

    /// Ends the request with the kernel's result (bytes, or -errno) and returns its completion
    /// with the outcome to call it with (no closure made: this runs for every request).
    func complete(result: Int64) -> (completion: IoCompletion, outcome: Result<Int, BlockError>)? {
        guard let request else { return nil }
        let outcome = request.finish(result: result, bounce: bounce)
        self.request = nil
        bounce = nil
        return (request.completion, outcome)
    }
}
