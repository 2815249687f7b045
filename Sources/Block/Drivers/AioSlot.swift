import CKVM
import Glibc

/// One in-flight libaio request: its iocb, the iovecs the kernel reads at submit time,
/// and a bounce buffer when the guest's buffers are not aligned for O_DIRECT.
final class AioSlot {
    let index: Int
    let iocb: UnsafeMutablePointer<iocb>
    private var request: FileRequest?
    /// The iovec array the kernel reads during io_submit (which may come later, when plugged):
    /// the slot's own, kept from request to request and grown when a request needs more.
    private var iovecs: UnsafeMutableBufferPointer<iovec>
    private var bounce: UnsafeMutableRawBufferPointer?

    init(index: Int) {
        self.index = index
        iocb = .allocate(capacity: 1)
        iocb.initialize(to: CKVM.iocb())
        iovecs = .allocate(capacity: 4)
    }

    deinit {
        iocb.deallocate()
        iovecs.deallocate()
    }

    func start(_ request: FileRequest, eventFd: Int32) {
        self.request = request
        bounce = request.makeBounceBuffer()
        let count = fillIovecs(request)
        switch request.operation {
        case .read: io_prep_preadv(iocb, request.fd, iovecs.baseAddress, Int32(count), request.offset)
        case .write: io_prep_pwritev(iocb, request.fd, iovecs.baseAddress, Int32(count), request.offset)
        case .fdsync: io_prep_fdsync(iocb, request.fd)
        }
        io_set_eventfd(iocb, eventFd)
        iocb.pointee.data = UnsafeMutableRawPointer(bitPattern: index)
    }

    /// Copies the request's buffers (or its bounce buffer) into `iovecs`; returns how many.
    private func fillIovecs(_ request: FileRequest) -> Int {
        if let bounce {
            iovecs[0] = iovec(iov_base: bounce.baseAddress, iov_len: bounce.count)
            return 1
        }
        return request.vector.withSegments { segments in
            if segments.count > iovecs.count {
                iovecs.deallocate()
                iovecs = .allocate(capacity: segments.count)
            }
            _ = iovecs.initialize(fromContentsOf: segments)
            return segments.count
        }
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
