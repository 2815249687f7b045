import Glibc

/// A point on the monotonic clock, for bounded waits.
public struct Deadline: Sendable {
    public let at: Double
    /// How long the wait was allowed to be, for messages.
    public let seconds: Double

    public init(secondsFromNow seconds: Double) {
        self.seconds = max(0, seconds)
        at = Self.now() + self.seconds
    }

    public var remaining: Double { max(0, at - Self.now()) }
    public var hasPassed: Bool { Self.now() >= at }

    /// CLOCK_MONOTONIC in seconds.
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
