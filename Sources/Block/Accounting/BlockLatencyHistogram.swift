/// A latency histogram of one request type (QEMU's BlockLatencyHistogram, block/accounting.c):
/// `boundaries` b0 < b1 < … split the latencies into the bins [0, b0), [b0, b1), …, [bn, ∞).
public struct BlockLatencyHistogram: Sendable, Equatable {
    public let boundaries: [UInt64]
    public private(set) var bins: [UInt64]

    /// block_latency_histogram_set: nil unless the boundaries strictly increase from above zero.
    public init?(boundaries: [UInt64]) {
        var previous: UInt64 = 0
        for boundary in boundaries {
            guard boundary > previous else { return nil }
            previous = boundary
        }
        self.boundaries = boundaries
        bins = [UInt64](repeating: 0, count: boundaries.count + 1)
    }

    /// block_latency_histogram_account: the first bin whose upper boundary is above the latency.
    /// (QEMU reads boundaries[0] of an empty list here; with no boundaries all goes to the one bin.)
    mutating func account(latencyNs: Int64) {
        let latency = UInt64(max(0, latencyNs))
        var low = 0, high = boundaries.count
        while low < high {
            let middle = (low + high) / 2
            if latency < boundaries[middle] { high = middle } else { low = middle + 1 }
        }
        bins[low] &+= 1
    }
}
