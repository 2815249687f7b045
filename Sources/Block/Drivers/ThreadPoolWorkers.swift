import CKVM
import Glibc
import Synchronization

/// The worker threads of `aio=threads` and what they share with the loop: a queue of work in, a
/// list of results out, and the eventfd that tells the loop.
final class ThreadPoolWorkers: @unchecked Sendable {  // the queues are Mutexes; the semaphore and the eventfd are thread-safe
    let eventFd: Int32
    private let queue = Mutex<[ThreadPoolWork]>([])
    private let finished = Mutex<[(id: Int, result: Int64)]>([])
    private let workAvailable: UnsafeMutablePointer<sem_t>

    init(threads: Int) throws(BlockError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 { throw BlockError.posix("eventfd", errno: errno) }
        eventFd = fd
        workAvailable = .allocate(capacity: 1)
        sem_init(workAvailable, 0, 0)
        for index in 0..<threads {
            do { try NativeThread.start(name: "svmm-io\(index)") { [self] in self.workerLoop() } } catch { throw BlockError(error) }
        }
    }

    func enqueue(_ work: ThreadPoolWork) {
        queue.withLock { $0.append(work) }
        sem_post(workAvailable)
    }

    func takeFinished() -> [(id: Int, result: Int64)] {
        finished.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }

    private func workerLoop() {
        while true {
            while sem_wait(workAvailable) != 0 {}
            guard let work = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            let result = Self.perform(work)
            finished.withLock { $0.append((work.id, result)) }
            var one: UInt64 = 1
            _ = write(eventFd, &one, 8)
        }
    }

    private static func perform(_ work: ThreadPoolWork) -> Int64 {
        let result: Int = work.iovecs.withUnsafeBufferPointer { vectors in
            switch work.operation {
            case .read: preadv(work.fd, vectors.baseAddress, Int32(vectors.count), off_t(work.offset))
            case .write: pwritev(work.fd, vectors.baseAddress, Int32(vectors.count), off_t(work.offset))
            case .fdsync: Int(fdatasync(work.fd))
            }
        }
        if result < 0 { return -Int64(errno) }
        let total = work.iovecs.reduce(0) { $0 + $1.iov_len }
        guard work.operation == .write, result > 0, result < total else { return Int64(result) }
        return finishShortWrite(work, written: result, total: total)
    }

    /// handle_aiocb_rw_linear: a write the kernel took only part of goes on from where it stopped,
    /// so a disk that fills up says ENOSPC rather than a short count.
    private static func finishShortWrite(_ work: ThreadPoolWork, written first: Int, total: Int) -> Int64 {
        var done = first
        while done < total {
            var skip = done
            var rest: [iovec] = []
            for vector in work.iovecs {
                if skip >= vector.iov_len { skip -= vector.iov_len; continue }
                rest.append(iovec(iov_base: vector.iov_base.map { $0 + skip }, iov_len: vector.iov_len - skip))
                skip = 0
            }
            let result = rest.withUnsafeBufferPointer { pwritev(work.fd, $0.baseAddress, Int32($0.count), off_t(work.offset) + off_t(done)) }
            if result < 0 {
                if errno == EINTR { continue }
                return -Int64(errno)
            }
            if result == 0 { break }
            done += result
        }
        return Int64(done)
    }
}
