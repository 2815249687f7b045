import Testing
@testable import Migration

/// The switch-over rule on the figures of the RAM-dirtying guest: 1 MB/ms live passes.
struct ConvergenceRuleTests {
    let rule = ConvergenceRule()
    let mib: UInt64 = 1 << 20

    @Test func aTinyRemainderSwitchesOverEvenAfterTheBulkPass() {
        #expect(rule.switchOver(pendingBytes: 64 << 10, sentBytes: 512 * mib, bytesPerMillisecond: 1_000_000,
                                downtimeLimit: 300, bulkPass: true))
    }

    @Test func theFirstDirtySetGoesLive() {
        #expect(!rule.switchOver(pendingBytes: 64 * mib, sentBytes: 512 * mib, bytesPerMillisecond: 1_000_000,
                                 downtimeLimit: 300, bulkPass: true))
    }

    @Test func aPassThatShrankTheDirtySetIsFollowedByAnother() {
        #expect(!rule.switchOver(pendingBytes: 22 * mib, sentBytes: 64 * mib, bytesPerMillisecond: 1_000_000,
                                 downtimeLimit: 300, bulkPass: false))
    }

    @Test func aPassThatDidNotHalveTheDirtySetEndsPrecopy() {
        #expect(rule.switchOver(pendingBytes: 40 * mib, sentBytes: 64 * mib, bytesPerMillisecond: 1_000_000,
                                downtimeLimit: 300, bulkPass: false))
    }

    @Test func theDowntimeLimitIsNeverExceeded() {
        // 40 MiB at 100 KB/ms is ~420 ms: above 300, so the passes go on however little they shrink.
        #expect(!rule.switchOver(pendingBytes: 40 * mib, sentBytes: 41 * mib, bytesPerMillisecond: 100_000,
                                 downtimeLimit: 300, bulkPass: false))
        #expect(!rule.switchOver(pendingBytes: 2 * mib, sentBytes: 64 * mib, bytesPerMillisecond: 1_000_000,
                                 downtimeLimit: 1, bulkPass: false))
    }
}
