import Foundation
import Glibc
import Loop
import Testing

/// Loop timers (LoopTimer over timerfd) on a real epoll loop: they fire at about the rate asked
/// for, and a handler may cancel its own timer.
@Suite struct LoopTimerTests {
    /// Counts handler calls on the loop thread; read from the test thread after the loop is done.
    final class Counter: @unchecked Sendable {
        var fired = 0
        var timer: LoopTimer?
    }

    @Test func aPeriodicTimerFiresAtTheRequestedRateWithinAWideMargin() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let counter = Counter()
        try loop.onLoop {
            counter.timer = try loop.schedule(after: .milliseconds(10), repeating: .milliseconds(10)) { counter.fired += 1 }
        }
        Thread.sleep(forTimeInterval: 0.5)
        let fired = try loop.onLoop { () -> Int in
            counter.timer?.cancel()
            return counter.fired
        }
        // 50 periods in 0.5 s; a loaded machine may run late (one call per late batch), never early.
        #expect(fired >= 10 && fired <= 51, "fired \(fired) times")
    }

    @Test func cancellingFromInsideItsOwnHandlerStopsTheTimer() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let counter = Counter()
        try loop.onLoop {
            counter.timer = try loop.schedule(after: .milliseconds(1), repeating: .milliseconds(1)) {
                counter.fired += 1
                if counter.fired == 3 { counter.timer?.cancel() }
            }
        }
        Thread.sleep(forTimeInterval: 0.2)
        let fired = try loop.onLoop { counter.fired }
        #expect(fired == 3)
        #expect(try loop.onLoop { counter.timer?.isCancelled } == true)
    }

    @Test func aOneShotTimerFiresOnceAndMayScheduleTheNextFromItsHandler() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let counter = Counter()
        @Sendable func arm() throws {
            counter.timer = try loop.schedule(after: .milliseconds(2)) {
                counter.fired += 1
                if counter.fired < 5 { try? arm() }
            }
        }
        try loop.onLoop { try arm() }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try loop.onLoop { counter.fired } == 5)
    }

    @Test func aReleasedTimerNeverFires() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let counter = Counter()
        try loop.onLoop {
            _ = try loop.schedule(after: .milliseconds(5)) { counter.fired += 1 }
        }
        Thread.sleep(forTimeInterval: 0.1)
        #expect(try loop.onLoop { counter.fired } == 0)
    }
}
