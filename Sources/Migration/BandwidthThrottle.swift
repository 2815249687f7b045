import Glibc

/// migration_rate_limit: at most `max-bandwidth` bytes a second (0: no limit), enforced over
/// 100 ms windows (QEMU's BUFFER_DELAY). A record larger than a window's share carries its
/// excess into the next windows; the limit is read anew each time, so a change applies at once.
struct BandwidthThrottle {
    private static let windowMicroseconds: Int64 = 100_000
    private var windowStart = MonotonicClock.microseconds
    private var bytesInWindow: UInt64 = 0

    /// Counts `bytes` just sent; sleeps while the windows' shares are used up.
    mutating func sent(_ bytes: Int, limit bytesPerSecond: UInt64) {
        bytesInWindow += UInt64(bytes)
        guard bytesPerSecond > 0 else { return }
        let share = max(bytesPerSecond / 10, 1)
        var now = MonotonicClock.microseconds
        if now - windowStart >= Self.windowMicroseconds, bytesInWindow < share {
            windowStart = now
            bytesInWindow = UInt64(bytes)
        }
        while bytesInWindow >= share {
            let left = windowStart + Self.windowMicroseconds - now
            if left > 0 { usleep(useconds_t(left)) }
            windowStart += Self.windowMicroseconds
            bytesInWindow -= share
            now = MonotonicClock.microseconds
        }
    }
}
