import Testing
@testable import NBD

/// The NBD server's request buffers: reused while busy, bounded, and given back when idle.
@Suite struct BufferPoolTests {
    @Test func manyLargeRequestsInFlightLeaveAtMostTheBusyLimitCached() {
        let pool = BufferPool(busyLimit: 16 << 20, idleLimit: 2 << 20)
        // 64 pipelined 8 MiB reads (four clients with sixteen each), given back one by one.
        let buffers = (0..<64).map { _ in pool.take(8 << 20) }
        #expect(pool.outstanding == 64)
        for buffer in buffers.dropLast() {
            pool.give(buffer)
            #expect(pool.cachedBytes <= 16 << 20)
        }
        #expect(pool.cachedBytes == 16 << 20)
        pool.give(buffers.last!)
        #expect(pool.outstanding == 0)
        #expect(pool.cachedBytes <= 2 << 20)
    }

    @Test func anIdlePoolKeepsSmallBuffersForTheNextRequest() {
        let pool = BufferPool(busyLimit: 16 << 20, idleLimit: 2 << 20)
        let small = (0..<4).map { _ in pool.take(64 << 10) }
        let large = pool.take(4 << 20)
        small.forEach(pool.give)
        pool.give(large)
        // The 4 MiB buffer is over the idle limit and goes; the four 64 KiB ones stay.
        #expect(pool.cachedBytes == 4 * (64 << 10))
        let again = pool.take(60 << 10)
        #expect(again.count == 64 << 10)
        #expect(pool.cachedBytes == 3 * (64 << 10))
        pool.give(again)
    }

    @Test func buffersAreWritableAndPageAligned() {
        let pool = BufferPool()
        for size in [1, 4096, 300_000, 1 << 20, 8 << 20] {
            let buffer = pool.take(size)
            #expect(buffer.count >= size)
            #expect(Int(bitPattern: buffer.baseAddress) % 4096 == 0)
            buffer[buffer.count - 1] = 0x5a
            #expect(buffer[buffer.count - 1] == 0x5a)
            pool.give(buffer)
        }
    }
}
