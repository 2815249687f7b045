import CKVM
import Glibc

/// `aio=threads`: blocking preadv/pwritev/fdatasync on worker threads, completions handed back
/// to the event loop through `eventFd` (QEMU's thread-pool AIO). Loop-owned (not Sendable): the
/// workers share only `ThreadPoolWorkers` with it, and never see a completion closure.
public final class ThreadPoolIo: FileIoEngine {
    private let workers: ThreadPoolWorkers
    public var eventFd: Int32 { workers.eventFd }
    /// Requests by id with their bounce buffers, until their completion comes back.
    private var pending: [Int: (request: FileRequest, bounce: UnsafeMutableRawBufferPointer?)] = [:]
    private var nextID = 0

    public init(threads: Int = 4) throws(BlockError) {
        workers = try ThreadPoolWorkers(threads: threads)
    }

    public func plug() {}
    public func unplug() {}

    public func submit(_ request: FileRequest) {
        let (iovecs, bounce) = request.prepareBuffers()
        nextID += 1
        pending[nextID] = (request, bounce)
        workers.enqueue(ThreadPoolWork(id: nextID, fd: request.fd, operation: request.operation, offset: request.offset, iovecs: iovecs))
    }

    public func processCompletions() {
        for (id, result) in workers.takeFinished() {
            guard let (request, bounce) = pending.removeValue(forKey: id) else { continue }
            request.completion(request.finish(result: result, bounce: bounce))
        }
    }
}
