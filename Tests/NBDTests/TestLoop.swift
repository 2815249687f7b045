import Block
import CKVM
import Foundation
import Glibc
import Synchronization

/// A test-only FdWatcher: a level-triggered epoll loop (as Machine's EventLoop, with EPOLLRDHUP)
/// on a thread of its own. Tests hand it work with `sync`, which waits for the result.
final class TestLoop: FdWatcher, @unchecked Sendable {
    private let epollFd: Int32
    private let wakeFd: Int32
    private var handlers: [Int32: (FdInterest) -> Void] = [:]
    private var deferred: [() -> Void] = []
    private let jobs = Mutex<[() -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init() throws {
        epollFd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFd
        guard epollFd >= 0, wakeFd >= 0, epoll_ctl(epollFd, EPOLL_CTL_ADD, wakeFd, &event) == 0 else {
            throw TestFailure("epoll setup failed: \(errno)")
        }
        try NativeThread.start(name: "nbd-test-loop") { [self] in self.run() }
    }

    /// Stops the thread (after the current iteration) and waits for it.
    func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        signal()
        finished.wait()
        close(epollFd)
        close(wakeFd)
    }

    /// Runs `job` on the loop thread and returns its result (or rethrows its error).
    func sync<T>(_ job: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let work = UncheckedBox(value: job)
        perform {
            box.result = Result { try work.value() }
            box.done.signal()
        }
        box.done.wait()
        return try box.result!.get()
    }

    /// Starts `operation` on the loop and waits (up to `timeout`) for the completion it calls.
    func run(timeout: TimeInterval = 30, _ operation: @escaping (@escaping IoCompletion) -> Void) throws -> Result<Int, BlockError> {
        let box = ResultBox<Result<Int, BlockError>>()
        let work = UncheckedBox(value: operation)
        perform {
            work.value { result in
                box.result = .success(result)
                box.done.signal()
            }
        }
        guard box.done.wait(timeout: .now() + timeout) == .success else { throw TestFailure("operation timed out") }
        return try box.result!.get()
    }

    private func perform(_ job: @escaping () -> Void) {
        let work = UncheckedBox(value: job)
        jobs.withLock { $0.append(work.value) }
        signal()
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    /// Completions of an AioContext are processed on this loop.
    func attach(_ aio: AioContext) throws {
        try sync {
            try self.watch(aio.eventFd, for: .readable) { _ in
                var counter: UInt64 = 0
                _ = read(aio.eventFd, &counter, 8)
                aio.processCompletions()
            }
        }
    }

    // MARK: FdWatcher

    private static func events(_ interest: FdInterest) -> UInt32 {
        var events = EPOLLRDHUP.rawValue
        if interest.contains(.readable) { events |= EPOLLIN.rawValue }
        if interest.contains(.writable) { events |= EPOLLOUT.rawValue }
        return events
    }

    func watch(_ fd: Int32, for interest: FdInterest, blockLayer: Bool, handler: @escaping (FdInterest) -> Void) throws(BlockError) {
        var event = epoll_event()
        event.events = Self.events(interest)
        event.data.fd = fd
        guard epoll_ctl(epollFd, EPOLL_CTL_ADD, fd, &event) == 0 else { throw BlockError.posix("epoll_ctl ADD", errno: errno) }
        handlers[fd] = handler
    }

    func update(_ fd: Int32, interest: FdInterest) throws(BlockError) {
        var event = epoll_event()
        event.events = Self.events(interest)
        event.data.fd = fd
        guard epoll_ctl(epollFd, EPOLL_CTL_MOD, fd, &event) == 0 else { throw BlockError.posix("epoll_ctl MOD", errno: errno) }
    }

    func unwatch(_ fd: Int32) {
        epoll_ctl(epollFd, EPOLL_CTL_DEL, fd, nil)
        handlers[fd] = nil
    }

    func runSoon(_ job: @escaping () -> Void) { deferred.append(job) }

    /// Everything here is the block layer's, but jobs from other threads wait for the outer loop.
    func pollBlockLayer(timeoutMilliseconds: Int32) {
        var events = [epoll_event](repeating: epoll_event(), count: 32)
        let count = events.withUnsafeMutableBufferPointer { epoll_wait(epollFd, $0.baseAddress, Int32($0.count), timeoutMilliseconds) }
        for event in events.prefix(max(Int(count), 0)) where event.data.fd != wakeFd { dispatch(event) }
    }

    // MARK: loop

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 32)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epollFd, $0.baseAddress, Int32($0.count), -1) }
            for event in events.prefix(max(Int(count), 0)) { dispatch(event) }
            while !deferred.isEmpty {
                let pending = deferred
                deferred.removeAll()
                for job in pending { job() }
            }
        }
        finished.signal()
    }

    private func dispatch(_ event: epoll_event) {
        if event.data.fd == wakeFd {
            var counter: UInt64 = 0
            _ = read(wakeFd, &counter, 8)
            let pending = jobs.withLock { queue in
                defer { queue.removeAll() }
                return queue
            }
            for job in pending { job() }
            return
        }
        var ready: FdInterest = []
        if event.events & EPOLLIN.rawValue != 0 { ready.insert(.readable) }
        if event.events & EPOLLOUT.rawValue != 0 { ready.insert(.writable) }
        if event.events & (EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0 { ready.insert(.hangup) }
        handlers[event.data.fd]?(ready)
    }
}
