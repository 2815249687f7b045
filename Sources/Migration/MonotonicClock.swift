import Loop

/// Milliseconds and microseconds of CLOCK_MONOTONIC, for durations.
enum MonotonicClock {
    static var microseconds: Int64 { MonotonicTime.nanoseconds / 1000 }

    static var milliseconds: Int64 { microseconds / 1000 }
}
