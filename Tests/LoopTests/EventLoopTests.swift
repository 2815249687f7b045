import Foundation
import Glibc
import Loop
import Synchronization
import Testing

/// The epoll loop itself: jobs from other threads run on the loop thread in order, eventfds
/// wake their handlers, and `stop()` ends the thread.
@Suite struct EventLoopTests {
    @Test func jobsFromOtherThreadsRunOnTheLoopThreadInOrder() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let seen = Mutex<[Int]>([])
        for index in 0..<100 { loop.perform { seen.withLock { $0.append(index) } } }
        let onLoopThread = loop.performAndWait { loop.isCurrentThread }
        #expect(onLoopThread)
        #expect(!loop.isCurrentThread)
        #expect(seen.withLock { $0 } == Array(0..<100))
    }

    @Test func aSignalledEventFdRunsItsHandlerOnTheLoop() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let eventFd = try EventFd()
        let fired = Mutex(0)
        try loop.onLoop { try loop.watch(eventFd: eventFd.fd) { fired.withLock { $0 += 1 } } }
        eventFd.signal()
        let deadline = Date().addingTimeInterval(10)
        while fired.withLock({ $0 }) == 0, Date() < deadline { usleep(1000) }
        #expect(fired.withLock { $0 } == 1)
        try loop.onLoop { loop.unwatch(eventFd.fd) }
    }

    @Test func stopEndsTheThreadAndLaterJobsNeverRun() throws {
        let loop = try EventLoop.started()
        let ran = Mutex(false)
        loop.stop()
        loop.perform { ran.withLock { $0 = true } }
        usleep(50_000)
        #expect(ran.withLock { $0 } == false)
        loop.stop()  // a second stop returns at once
    }

    @Test func watchingAClosedDescriptorNamesTheCall() throws {
        let loop = try EventLoop()
        #expect(throws: SystemCallError("epoll_ctl ADD fd 1000", errno: EBADF)) {
            try loop.watch(1000, for: .readable) { _ in }
        }
    }
}

/// `awaitNextJob`: a job that polls for the next one returns as soon as it is queued, or at once
/// when the batch being run holds it already (a destination once polled its whole window for a
/// load taken from the queue with it).
@Suite struct EventLoopAwaitNextJobTests {
    static let window: Int64 = 30_000_000_000  // 30 s: far beyond what either case may take

    @Test func returnsWhenTheNextJobIsQueued() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let polling = Mutex(false)
        let order = Mutex<[String]>([])
        let start = MonotonicTime.nanoseconds
        loop.perform {
            polling.withLock { $0 = true }
            loop.awaitNextJob(pollingForNanoseconds: Self.window)
            order.withLock { $0.append("polled") }
        }
        while !polling.withLock({ $0 }) { usleep(100) }
        loop.performAndWait { order.withLock { $0.append("next") } }
        #expect(order.withLock { $0 } == ["polled", "next"])
        #expect(MonotonicTime.nanoseconds - start < Self.window / 2)
    }

    @Test func returnsAtOnceWhenTheBatchHoldsTheNextJob() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let start = MonotonicTime.nanoseconds
        // Both jobs are queued while the loop is held, so one batch takes them together.
        let held = ResultSlot<Void>()
        loop.perform { held.wait() }
        loop.perform { loop.awaitNextJob(pollingForNanoseconds: Self.window) }
        let ran = ResultSlot<Int64>()
        loop.perform { ran.fill(MonotonicTime.nanoseconds) }
        held.fill(())
        #expect(ran.wait() - start < Self.window / 2)
    }
}
