/// QEMU's RateLimit (include/qemu/ratelimit.h) as the mirror uses it: bytes are counted per
/// 100 ms slice; once a slice's quota is used up, the next request waits until the slice,
/// stretched in proportion to the excess, is over.
struct MirrorRateLimit {
    static let slice = Duration.milliseconds(100)
    private var sliceStart = ContinuousClock.now
    private var sliceEnd = ContinuousClock.now
    private var dispatched: Int64 = 0

    /// How long to wait before sending more at `speed` bytes/s (nil: now).
    mutating func delay(speed: Int64, now: ContinuousClock.Instant = .now) -> Duration? {
        guard speed > 0 else { return nil }
        if sliceEnd <= now {
            sliceStart = now
            sliceEnd = now + Self.slice
            dispatched = 0
        }
        let quota = max(1, speed / 10)
        guard dispatched >= quota else { return nil }
        let slices = Double(dispatched) / Double(quota)
        sliceEnd = sliceStart + Self.slice * slices
        return sliceEnd > now ? sliceEnd - now : nil
    }

    mutating func account(_ bytes: Int64) { dispatched += bytes }

    /// A copy that turned out to be zeroes costs nothing (QEMU does not count write-zeroes).
    mutating func refund(_ bytes: Int64) { dispatched = max(0, dispatched - bytes) }
}
