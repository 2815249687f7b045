import Glibc
@testable import Loop
import Synchronization
import Testing

/// The busy-poll window of an iothread (QEMU's poll-max-ns, poll-grow, poll-shrink): how it
/// opens, grows and closes after each wait, and that the loop polls before it blocks.
@Suite struct LoopPollGroupTests {
    @Test func theWindowOpensAt4MicrosecondsAndDoublesUpToTheMaximum() {
        let group = LoopPollGroup(maxNanoseconds: 20_000, grow: 0, shrink: 0)
        var windows: [Int64] = []
        for _ in 0..<5 {
            group.adjust(blocked: 19_000)  // longer than the window, shorter than the maximum
            windows.append(group.windowNanoseconds)
        }
        #expect(windows == [4000, 8000, 16000, 20000, 20000])
    }

    @Test func aWaitWithinTheWindowChangesNothing() {
        let group = LoopPollGroup(maxNanoseconds: 100_000, grow: 0, shrink: 0)
        group.adjust(blocked: 50_000)
        group.adjust(blocked: 3_000)
        #expect(group.windowNanoseconds == 4000)
    }

    @Test func aWaitLongerThanTheMaximumClosesOrShrinksTheWindow() {
        let closing = LoopPollGroup(maxNanoseconds: 100_000, grow: 0, shrink: 0)
        let shrinking = LoopPollGroup(maxNanoseconds: 100_000, grow: 3, shrink: 2)
        for group in [closing, shrinking] {
            group.adjust(blocked: 50_000)
            group.adjust(blocked: 50_000)
        }
        #expect(closing.windowNanoseconds == 8000)
        #expect(shrinking.windowNanoseconds == 12000)  // poll-grow=3
        closing.adjust(blocked: 200_000)
        shrinking.adjust(blocked: 200_000)
        #expect(closing.windowNanoseconds == 0)
        #expect(shrinking.windowNanoseconds == 6000)  // poll-shrink=2
    }

    @Test func aHugeGrowFactorStopsAtTheMaximum() {
        let group = LoopPollGroup(maxNanoseconds: Int64.max, grow: Int64.max, shrink: 0)
        group.adjust(blocked: 1)
        group.adjust(blocked: 5000)
        #expect(group.windowNanoseconds == Int64.max)
    }

    /// Short waits open the window; from then on the loop runs the pollers before it blocks,
    /// and every polling period that found nothing ends (begin and end hooks in pairs).
    @Test func theLoopPollsBeforeItBlocksOnceTheWindowIsOpen() throws {
        let loop = try EventLoop()
        let counts = Mutex((polls: 0, begins: 0, ends: 0))
        let group = loop.addPollGroup(maxNanoseconds: 50_000_000, grow: 0, shrink: 0)
        group.add(poll: { counts.withLock { $0.polls += 1 }; return false },
                  begin: { counts.withLock { $0.begins += 1 } },
                  end: { counts.withLock { $0.ends += 1 } })
        try loop.start()
        for _ in 0..<20 {
            loop.performAndWait { () }
        }
        loop.stop()
        let seen = counts.withLock { $0 }
        #expect(seen.polls > 0)
        #expect(seen.begins > 0)
        #expect(seen.begins == seen.ends)
    }
}
