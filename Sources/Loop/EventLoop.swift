import CKVM
import Glibc
import Synchronization

/// The one thread that owns device queues, the block layer, QMP, NBD, jobs and migration:
/// an epoll loop over eventfds and sockets. Other threads hand it work with `perform` or
/// `performAndWait`, and reach loop-owned objects only through a `LoopBound`.
/// Sendable because every method other threads may call locks (`perform`) or is atomic (`wake`,
/// `stop`); the handler table and deferred jobs are touched only by the owner (checked).
public final class EventLoop: FdWatcher, @unchecked Sendable {  // see above: cross-thread calls lock or are atomic; the rest is owner-checked
    private let epollFd: Int32
    /// The block layer's descriptors again (NBD sockets, AIO completions), for `pollBlockLayer`.
    private let blockEpollFd: Int32
    private var blockLayerFds: Set<Int32> = []
    private let wakeup: EventFd
    private var handlers: [Int32: (UInt32) -> Void] = [:]
    private var deferred: [() -> Void] = []
    private let jobs = Mutex<[() -> Void]>([])
    /// Jobs of the batch `runJobs` is running that come after the current one (loop thread only).
    private var jobsLeftInBatch = 0
    /// How many jobs are queued, for the polls (`awaitNextJob`, `pollBeforeWaiting`): an atomic,
    /// which ThreadSanitizer sees (it does not see Swift's Mutex on Linux, and polled reads of
    /// `jobs` raced for it). Inside the lock, each side acquires it before it touches the queue and
    /// releases it after: the lock's own ordering, in a form TSan sees, so it sees the queue handed
    /// over both ways even when the loop takes a job before it reads the wake-up eventfd that job
    /// signalled (reports in migrations under the TSan build).
    private let queuedJobs = Atomic<Int>(0)
    /// The loop thread's pthread_t once it runs (0 before): the owner check reads it on every access.
    private let threadID = Atomic<UInt>(0)
    /// Set by the loop thread when it starts, so that `stop` knows whether a thread is there to wait for.
    private let started = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let exited = ResultSlot<Void>()
    /// `-object iothread,poll-max-ns=...` groups (see LoopPollGroup): polled before each wait.
    private var pollGroups: [LoopPollGroup] = []

    public init() throws(SystemCallError) {
        epollFd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFd >= 0 else { throw SystemCallError("epoll_create1") }
        blockEpollFd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard blockEpollFd >= 0 else { throw SystemCallError("epoll_create1") }
        wakeup = try EventFd()
        try watch(eventFd: wakeup.fd) { [unowned self] in self.runJobs() }
    }

    deinit {
        close(epollFd)
        close(blockEpollFd)
    }

    public var isCurrentThread: Bool {
        let threadID = threadID.load(ordering: .acquiring)
        return threadID != 0 && pthread_equal(threadID, pthread_self()) != 0
    }

    /// Whether the caller owns the loop's state: it is the loop thread, or the loop has not been
    /// started (the thread setting a machine up, or a test driving the block layer by hand).
    public var isOwner: Bool {
        !started.load(ordering: .acquiring) || isCurrentThread
    }

    /// Traps when a thread other than the owner touches loop-owned state (see `LoopBound`).
    public func preconditionOwner(file: StaticString = #fileID, line: UInt = #line) {
        precondition(isOwner, "loop-owned state touched off the loop thread", file: file, line: line)
    }

    /// Calls `handler` on the loop thread whenever `fd` is readable. Call before `start` or on the loop.
    public func watch(_ fd: Int32, handler: @escaping () -> Void) throws(SystemCallError) {
        try add(fd, events: EPOLLIN.rawValue) { _ in handler() }
    }

    /// Calls `handler` each time `eventFd` is signalled. The counter is never read: every signal is
    /// its own edge, which saves a read syscall per kick or completion on the fast path.
    /// `blockLayer`: I/O completions, which a synchronous block request waits for (see `pollBlockLayer`);
    /// not a guest's queue kicks, which must not start requests in the middle of another one.
    public func watch(eventFd fd: Int32, blockLayer: Bool = false, handler: @escaping () -> Void) throws(SystemCallError) {
        try add(fd, events: EPOLLIN.rawValue | EPOLLET.rawValue, blockLayer: blockLayer) { _ in handler() }
    }

    private func add(_ fd: Int32, events: UInt32, blockLayer: Bool = false, rawHandler: @escaping (UInt32) -> Void) throws(SystemCallError) {
        preconditionOwner()
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        guard epoll_ctl(epollFd, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw SystemCallError("epoll_ctl ADD fd \(fd)")
        }
        if blockLayer {
            // A second epoll instance sees the same descriptor with edges of its own.
            guard epoll_ctl(blockEpollFd, EPOLL_CTL_ADD, fd, &event) == 0 else {
                epoll_ctl(epollFd, EPOLL_CTL_DEL, fd, nil)
                throw SystemCallError("epoll_ctl ADD fd \(fd)")
            }
            blockLayerFds.insert(fd)
        }
        handlers[fd] = rawHandler
    }

    // MARK: FdWatcher (sockets for QMP and NBD)

    private static func epollEvents(_ interest: FdInterest) -> UInt32 {
        var events = EPOLLRDHUP.rawValue
        if interest.contains(.readable) { events |= EPOLLIN.rawValue }
        if interest.contains(.writable) { events |= EPOLLOUT.rawValue }
        return events
    }

    public func watch(_ fd: Int32, for interest: FdInterest, blockLayer: Bool, handler: @escaping (FdInterest) -> Void) throws(SystemCallError) {
        try add(fd, events: Self.epollEvents(interest), blockLayer: blockLayer) { events in
            var ready: FdInterest = []
            if events & EPOLLIN.rawValue != 0 { ready.insert(.readable) }
            if events & EPOLLOUT.rawValue != 0 { ready.insert(.writable) }
            if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0 { ready.insert(.hangup) }
            handler(ready)
        }
    }

    public func update(_ fd: Int32, interest: FdInterest) throws(SystemCallError) {
        preconditionOwner()
        var event = epoll_event()
        event.events = Self.epollEvents(interest)
        event.data.fd = fd
        guard epoll_ctl(epollFd, EPOLL_CTL_MOD, fd, &event) == 0 else {
            throw SystemCallError("epoll_ctl MOD fd \(fd)")
        }
        if blockLayerFds.contains(fd) { epoll_ctl(blockEpollFd, EPOLL_CTL_MOD, fd, &event) }
    }

    /// A new busy-poll group (an iothread's polling parameters). Call before `start` or on the loop.
    public func addPollGroup(maxNanoseconds: Int64, grow: Int64, shrink: Int64) -> LoopPollGroup {
        preconditionOwner()
        let group = LoopPollGroup(maxNanoseconds: maxNanoseconds, grow: grow, shrink: shrink)
        pollGroups.append(group)
        return group
    }

    public func runSoon(_ job: @escaping () -> Void) {
        preconditionOwner()
        deferred.append(job)
    }

    public func unwatch(_ fd: Int32) {
        preconditionOwner()
        epoll_ctl(epollFd, EPOLL_CTL_DEL, fd, nil)
        if blockLayerFds.remove(fd) != nil { epoll_ctl(blockEpollFd, EPOLL_CTL_DEL, fd, nil) }
        handlers[fd] = nil
    }

    public func pollBlockLayer(timeoutMilliseconds: Int32) {
        preconditionOwner()
        var events = [epoll_event](repeating: epoll_event(), count: 32)
        let count = events.withUnsafeMutableBufferPointer {
            epoll_wait(blockEpollFd, $0.baseAddress, Int32($0.count), timeoutMilliseconds)
        }
        for event in events.prefix(max(0, Int(count))) where blockLayerFds.contains(event.data.fd) {
            handlers[event.data.fd]?(event.events)
        }
    }

    /// Starts the loop thread, which owns the loop's state from then on. Returns once it does, so
    /// the thread that set things up hands them over at one point (see `isOwner`).
    public func start() throws(SystemCallError) {
        let running = ResultSlot<Void>()
        try NativeThread.start(name: "svmm-loop") { [self] in
            self.threadID.store(pthread_self(), ordering: .releasing)
            self.started.store(true, ordering: .sequentiallyConsistent)
            running.fill(())
            self.run()
            self.exited.fill(())
        }
        running.wait()
    }

    /// Ends the loop thread after its current turn and waits until it has left the loop (for
    /// tests, which start a loop each). Jobs queued later never run. Not from the loop thread.
    public func stop() {
        precondition(!isCurrentThread, "EventLoop.stop() on its own thread would wait for itself")
        guard started.exchange(false, ordering: .sequentiallyConsistent) else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        wakeup.signal()
        exited.wait()
    }

    /// Queues `job` to run on the loop thread.
    public func perform(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { queue in
            _ = queuedJobs.load(ordering: .acquiring)  // see `queuedJobs`
            queue.append(job)
            queuedJobs.add(1, ordering: .releasing)
        }
        wakeup.signal()
    }

    /// Runs `job` on the loop thread and waits for its result (for vCPU exits that touch devices).
    public func performAndWait<T: Sendable>(_ job: @escaping @Sendable () -> T) -> T {
        if isCurrentThread { return job() }
        let done = ResultSlot<T>()
        perform { done.fill(job()) }
        return done.wait()
    }

    /// On the loop thread, in a job: polls the job queue for up to `nanoseconds` instead of
    /// sleeping, and returns as soon as a job is queued (the loop runs it next): for a job due
    /// within µs (a migration's switch-over), where waking the sleeping loop costs tens of µs here.
    public func awaitNextJob(pollingForNanoseconds nanoseconds: Int64) {
        preconditionOwner()
        guard jobsLeftInBatch == 0 else { return }  // the next job was queued already
        let end = MonotonicTime.nanoseconds + nanoseconds
        while queuedJobs.load(ordering: .acquiring) <= 0 && MonotonicTime.nanoseconds < end { sched_yield() }
    }

    /// Blocks the loop thread until a job is queued (or `timeoutMilliseconds` pass), then runs the
    /// queued jobs: for the loop while it waits on a vCPU, which may need it meanwhile (see
    /// VcpuRunner.pause). The counter is read here so that poll does not see it ready again;
    /// jobs queued later signal anew, and the epoll loop gets its own edge for them.
    package func waitForJobs(timeoutMilliseconds: Int32) {
        var descriptor = pollfd(fd: wakeup.fd, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, timeoutMilliseconds) > 0 {
            var counter: UInt64 = 0
            _ = read(wakeup.fd, &counter, 8)
        }
        runJobs()
    }

    /// Wakes a loop blocked in `waitForJobs` (or in epoll) without queuing anything.
    package func wake() { wakeup.signal() }

    private func runJobs() {
        let pending = jobs.withLock { queue in
            _ = queuedJobs.load(ordering: .acquiring)  // see `queuedJobs`
            let taken = queue
            queue.removeAll()
            queuedJobs.subtract(taken.count, ordering: .releasing)
            return taken
        }
        let outerBatch = jobsLeftInBatch  // runJobs runs nested too, in a job that waits (waitForJobs)
        defer { jobsLeftInBatch = outerBatch }
        for (index, job) in pending.enumerated() {
            jobsLeftInBatch = pending.count - index - 1
            job()
        }
    }

    /// QEMU's run_poll_handlers: polls the open groups until one finds work or the longest
    /// window has passed; without progress, polling ends (the groups' end hooks) before blocking.
    /// Other descriptors wait meanwhile, at most one window (as in a QEMU iothread).
    private func pollBeforeWaiting(since start: Int64) -> Bool {
        var window: Int64 = 0
        for group in pollGroups where group.isOpen {
            window = max(window, group.windowNanoseconds)
            group.begin()
        }
        var progress = false
        if window > 0 {
            // Jobs from other threads (QMP, vCPU exits) end polling at once: the wakeup is signalled.
            repeat {
                for group in pollGroups where group.isOpen && group.pollOnce() { progress = true }
            } while !progress && queuedJobs.load(ordering: .acquiring) <= 0 && LoopPollGroup.now() - start < window
        }
        if !progress {
            for group in pollGroups { group.end() }
        }
        return progress
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 32)
        while !stopping.load(ordering: .acquiring) {
            let started = pollGroups.isEmpty ? 0 : LoopPollGroup.now()
            // Work found by polling is done; the wait then only collects what else is ready.
            let timeout: Int32 = started != 0 && pollBeforeWaiting(since: started) ? 0 : -1
            let count = events.withUnsafeMutableBufferPointer { epoll_wait(epollFd, $0.baseAddress, Int32($0.count), timeout) }
            if started != 0 {
                let blocked = LoopPollGroup.now() - started
                for group in pollGroups { group.adjust(blocked: blocked) }
            }
            if count < 0 { continue }  // EINTR
            for event in events.prefix(Int(count)) {
                handlers[event.data.fd]?(event.events)
            }
            while !deferred.isEmpty {
                let jobs = deferred
                deferred.removeAll()
                for job in jobs { job() }
            }
        }
    }
}
