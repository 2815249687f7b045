import Loop
import Machine

/// A migration thread's way onto the machine's event loop, which owns devices, the block graph
/// and the run state: queue a job there with the machine and wait (on Loop's `ResultSlot`) for
/// what it hands back.
enum LoopBridge<T: Sendable> {
    /// Runs `job` on the loop; it calls its second argument (now or later, on the loop) with the result.
    /// `pollingForNanoseconds`: for a result due within µs (the switch-over), poll for it that long
    /// before sleeping.
    static func run(on machine: LoopBound<Machine>, pollingForNanoseconds polling: Int64 = 0,
                    _ job: @escaping @Sendable (Machine, @escaping @Sendable (T) -> Void) -> Void) -> T {
        let slot = ResultSlot<T>()
        machine.perform { job($0) { slot.fill($0) } }
        return polling > 0 ? slot.wait(pollingForNanoseconds: polling) : slot.wait()
    }

    /// Runs `job` on the loop and returns its result.
    static func call(on machine: LoopBound<Machine>, _ job: @escaping @Sendable (Machine) -> T) -> T {
        machine.performAndWait(job)
    }
}
