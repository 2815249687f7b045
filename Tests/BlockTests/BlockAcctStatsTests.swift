import Testing
@testable import Block

/// The statistics a device keeps in its BlockBackend, counted as QEMU's block/accounting.c counts.
@Suite struct BlockAcctStatsTests {
    @Test func latenciesFallIntoTheBinOfTheirInterval() throws {
        var histogram = try #require(BlockLatencyHistogram(boundaries: [10, 100]))
        for latency: Int64 in [0, 9, 10, 99, 100, 5_000, -3] { histogram.account(latencyNs: latency) }
        // [0,10) gets 0, 9 and the clamped -3; [10,100) gets 10 and 99; [100,∞) gets 100 and 5000.
        #expect(histogram.bins == [3, 2, 2])
    }

    @Test(arguments: [[5, 5], [3, 2], [0], [1, 2, 2]] as [[UInt64]])
    func boundariesMustIncreaseFromAboveZero(boundaries: [UInt64]) {
        #expect(BlockLatencyHistogram(boundaries: boundaries) == nil)
    }

    @Test func noBoundariesMakeOneBin() throws {
        var histogram = try #require(BlockLatencyHistogram(boundaries: []))
        histogram.account(latencyNs: 42)
        #expect(histogram.bins == [1])
    }

    @Test func doneCountsBytesAndFailedCountsOnlyTheFailure() {
        let stats = BlockAcctStats()
        #expect(stats.idleTimeNs == nil)
        stats.done(stats.start(bytes: 4096, type: .read))
        stats.failed(stats.start(bytes: 512, type: .read))
        stats.done(stats.start(bytes: 0, type: .flush))
        let read = BlockAcctType.read.rawValue
        #expect(stats.operations[read] == 1 && stats.bytes[read] == 4096 && stats.failedOperations[read] == 1)
        #expect(stats.operations[BlockAcctType.flush.rawValue] == 1)
        #expect(stats.idleTimeNs != nil)
    }

    @Test func aRefusedRequestIsInvalidAndAddsNoLatency() {
        let stats = BlockAcctStats()
        stats.invalid(.write)
        let write = BlockAcctType.write.rawValue
        #expect(stats.invalidOperations[write] == 1 && stats.operations[write] == 0 && stats.totalTimeNs[write] == 0)
        #expect(stats.idleTimeNs != nil)  // account_invalid: it counts as an access
    }

    @Test func aSetHistogramCountsEveryEndedRequestOfItsType() {
        let stats = BlockAcctStats()
        #expect(stats.setLatencyHistogram(.write, boundaries: [1_000_000_000]))
        #expect(!stats.setLatencyHistogram(.read, boundaries: [2, 1]))
        stats.done(stats.start(bytes: 512, type: .write))
        stats.failed(stats.start(bytes: 512, type: .write))
        stats.done(stats.start(bytes: 512, type: .read))
        #expect(stats.latencyHistograms[BlockAcctType.write.rawValue]?.bins == [2, 0])
        #expect(stats.latencyHistograms[BlockAcctType.read.rawValue] == nil)
        stats.clearLatencyHistograms()
        #expect(stats.latencyHistograms.allSatisfy { $0 == nil })
    }
}
