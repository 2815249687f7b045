import Glibc
import Synchronization

/// A one-shot value handed from one thread to a thread blocked waiting for it.
public final class ResultSlot<T: Sendable>: @unchecked Sendable {  // the value is a Mutex; the semaphore is thread-safe
    private let value = Mutex<T?>(nil)
    /// Set once `value` is: what `wait(pollingForNanoseconds:)` polls (an atomic, which
    /// ThreadSanitizer sees; it does not see Swift's Mutex on Linux).
    private let filled = Atomic<Bool>(false)
    private let ready: UnsafeMutablePointer<sem_t>

    public init() {
        ready = .allocate(capacity: 1)
        sem_init(ready, 0, 0)
    }

    deinit {
        sem_destroy(ready)
        ready.deallocate()
    }

    public func fill(_ newValue: T) {
        value.withLock { $0 = newValue }
        filled.store(true, ordering: .releasing)
        sem_post(ready)
    }

    public func wait() -> T {
        while sem_wait(ready) != 0 {}
        return value.withLock { $0! }
    }

    /// `wait()`, but polling for the first `nanoseconds` (yielding the CPU between looks): for a
    /// value due within µs, where a sleeping thread's wake-up costs tens of µs on these machines.
    public func wait(pollingForNanoseconds nanoseconds: Int64) -> T {
        let end = MonotonicTime.nanoseconds + nanoseconds
        while MonotonicTime.nanoseconds < end {
            if filled.load(ordering: .acquiring) { return value.withLock { $0! } }
            sched_yield()
        }
        return wait()
    }
}
