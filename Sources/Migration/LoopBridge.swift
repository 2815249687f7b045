import Glibc
import Machine
import Synchronization

/// A migration thread's way onto the machine's event loop, which owns devices, the block graph
/// and the run state: queue a job there and wait for what it hands back.
final class LoopBridge<T: Sendable>: @unchecked Sendable {  // the value is behind a Mutex, the semaphore is thread-safe
    private let value = Mutex<T?>(nil)
    private let ready: UnsafeMutablePointer<sem_t>

    private init() {
        ready = .allocate(capacity: 1)
        sem_init(ready, 0, 0)
    }

    deinit {
        sem_destroy(ready)
        ready.deallocate()
    }

    private func fill(_ newValue: T) {
        value.withLock { $0 = newValue }
        sem_post(ready)
    }

    private func wait() -> T {
        while sem_wait(ready) != 0 {}
        return value.withLock { $0! }
    }

    /// Runs `job` on the loop; it calls its argument (now or later, on the loop) with the result.
    static func run(on machine: Machine, _ job: @escaping @Sendable (@escaping @Sendable (T) -> Void) -> Void) -> T {
        let bridge = LoopBridge<T>()
        machine.onLoop { job { bridge.fill($0) } }
        return bridge.wait()
    }

    /// Runs `job` on the loop and returns its result.
    static func call(on machine: Machine, _ job: @escaping @Sendable () -> T) -> T {
        run(on: machine) { done in done(job()) }
    }
}
