import Glibc
import Loop
import Testing

/// LoopBound, the one checked way a loop-owned (non-Sendable) object crosses threads: a job
/// reaches the value on the loop; touching it anywhere else traps, as does touching the loop's
/// handler table once the loop thread owns it.
@Suite struct LoopBoundTests {
    /// Loop-owned state as the layers have it: a plain class, not Sendable.
    final class Counter {
        var count = 0
    }

    @Test func aJobReachesTheValueOnTheLoopThread() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let bound = LoopBound(Counter(), loop: loop)
        for _ in 0..<10 { bound.perform { $0.count += 1 } }
        let (count, onLoop) = bound.performAndWait { ($0.count, loop.isCurrentThread) }
        #expect(count == 10)
        #expect(onLoop)
    }

    @Test func theThreadThatSetsUpOwnsTheLoopUntilItStarts() throws {
        let loop = try EventLoop()
        let bound = LoopBound(Counter(), loop: loop)
        bound.value.count = 3
        #expect(loop.isOwner)
        try loop.start()
        defer { loop.stop() }
        #expect(!loop.isOwner)
        #expect(bound.performAndWait { $0.count } == 3)
    }

    @Test func touchingTheValueOffTheLoopTraps() async throws {
        let result = try #require(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try EventLoop.started()
            let bound = LoopBound(Counter(), loop: loop)
            bound.value.count += 1
        })
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("loop-owned state touched off the loop thread"))
    }

    @Test func watchingFromAnotherThreadOnceTheLoopRunsTraps() async throws {
        let result = try #require(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let loop = try EventLoop.started()
            let eventFd = try EventFd()
            try loop.watch(eventFd: eventFd.fd) {}
        })
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self).contains("loop-owned state touched off the loop thread"))
    }
}
