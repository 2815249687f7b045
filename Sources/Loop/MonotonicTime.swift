import Glibc

/// CLOCK_MONOTONIC in nanoseconds: for durations and polling deadlines.
public enum MonotonicTime {
    public static var nanoseconds: Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) &* 1_000_000_000 &+ Int64(time.tv_nsec)
    }
}
