import Loop
import Machine

/// A migration thread's way onto the machine's event loop, which owns devices, the block graph
/// and the run state: queue a job there and wait (on Loop's `ResultSlot`) for what it hands back.
enum LoopBridge<T: Sendable> {
    /// Runs `job` on the loop; it calls its argument (now or later, on the loop) with the result.
    static func run(on machine: Machine, _ job: @escaping @Sendable (@escaping @Sendable (T) -> Void) -> Void) -> T {
        let slot = ResultSlot<T>()
        machine.onLoop { job { slot.fill($0) } }
        return slot.wait()
    }

    /// Runs `job` on the loop and returns its result.
    static func call(on machine: Machine, _ job: @escaping @Sendable () -> T) -> T {
        run(on: machine) { done in done(job()) }
    }
}
