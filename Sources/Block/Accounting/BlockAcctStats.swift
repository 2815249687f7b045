import Glibc

/// A BlockBackend's I/O statistics (QEMU's BlockAcctStats, block/accounting.c), which
/// `query-blockstats` reports. The device accounts its requests here, as QEMU's virtio-blk does:
/// `start` when it submits one, `done`, `failed` or `invalid` when it ends. Loop-owned.
public final class BlockAcctStats {
    private static let typeCount = BlockAcctType.allCases.count

    public private(set) var bytes = [Int64](repeating: 0, count: typeCount)
    public private(set) var operations = [Int64](repeating: 0, count: typeCount)
    public private(set) var failedOperations = [Int64](repeating: 0, count: typeCount)
    public private(set) var invalidOperations = [Int64](repeating: 0, count: typeCount)
    /// Requests merged into others before submission (svmm's virtio-blk merges none).
    public private(set) var mergedOperations = [Int64](repeating: 0, count: typeCount)
    public private(set) var totalTimeNs = [Int64](repeating: 0, count: typeCount)
    public private(set) var latencyHistograms = [BlockLatencyHistogram?](repeating: nil, count: typeCount)
    /// When the last request ended (CLOCK_MONOTONIC ns); 0 before the first.
    public private(set) var lastAccessTimeNs: Int64 = 0
    /// block_acct_init's defaults: invalid and failed requests count towards idle time and latency.
    public let accountInvalid = true
    public let accountFailed = true

    public init() {}

    /// block_acct_start.
    public func start(bytes: Int64, type: BlockAcctType) -> BlockAcctCookie {
        BlockAcctCookie(type: type, bytes: bytes, startNs: Self.nowNs())
    }

    /// block_acct_done.
    public func done(_ cookie: BlockAcctCookie) { account(cookie, failed: false) }

    /// block_acct_failed.
    public func failed(_ cookie: BlockAcctCookie) { account(cookie, failed: true) }

    /// block_acct_invalid: a request refused before it was submitted (out of range), no latency.
    public func invalid(_ type: BlockAcctType) {
        invalidOperations[type.rawValue] += 1
        if accountInvalid { lastAccessTimeNs = Self.nowNs() }
    }

    /// block_acct_idle_time_ns: nil before any request ended.
    public var idleTimeNs: Int64? {
        lastAccessTimeNs > 0 ? Self.nowNs() - lastAccessTimeNs : nil
    }

    /// block_latency_histogram_set; false (nothing changed) if the boundaries do not increase.
    public func setLatencyHistogram(_ type: BlockAcctType, boundaries: [UInt64]) -> Bool {
        guard let histogram = BlockLatencyHistogram(boundaries: boundaries) else { return false }
        latencyHistograms[type.rawValue] = histogram
        return true
    }

    /// block_latency_histograms_clear.
    public func clearLatencyHistograms() {
        latencyHistograms = [BlockLatencyHistogram?](repeating: nil, count: Self.typeCount)
    }

    /// block_account_one_io.
    private func account(_ cookie: BlockAcctCookie, failed: Bool) {
        let now = Self.nowNs()
        let latency = now - cookie.startNs
        let type = cookie.type.rawValue
        if failed {
            failedOperations[type] += 1
        } else {
            bytes[type] += cookie.bytes
            operations[type] += 1
        }
        latencyHistograms[type]?.account(latencyNs: latency)
        if !failed || accountFailed {
            totalTimeNs[type] += latency
            lastAccessTimeNs = now
        }
    }

    /// QEMU_CLOCK_REALTIME, which is CLOCK_MONOTONIC on Linux.
    private static func nowNs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
