import Glibc
import KVM
import Loop
import Synchronization

/// The loop's side of one vCPU thread (Firecracker's VcpuEvent/VcpuResponse channel): pause,
/// resume, finish and requests that the parked vCPU thread answers on its own thread, each
/// returning once the vCPU has acted. Nothing spins, except for a moment the loop chose
/// (`keepAwake`: a migration's switch-over, where each thread wake-up costs tens of µs on these
/// machines). The vCPU thread's side is `mayRun(answering:)` and `threadFinished()`.
final class VcpuControl: @unchecked Sendable {  // all state is in `state` (a Mutex); the semaphore and the run page are thread-safe
    private struct State {
        var pauseRequested: Bool
        var paused = false
        /// A request for the parked thread, and its answer (see `perform`).
        var request: VcpuRequest?
        var response: VcpuResponse?
        /// The vCPU thread, once it runs (the loop signals it to leave KVM_RUN).
        var thread: pthread_t?
        /// `finish` asked the thread to end; it has when `finished` is set.
        var finishRequested = false
        var finished = false
        /// Until when (CLOCK_MONOTONIC, ns) the parked thread polls for a request or resume
        /// instead of sleeping (`keepAwake`).
        var pollUntil: Int64 = 0
    }

    /// How long the loop polls for a request's answer before it sleeps: a state capture or
    /// restore takes ~100–200 µs here.
    private static let answerPollNanoseconds: Int64 = 1_000_000
    /// How long a parked thread goes on polling once it has answered a request (a resume comes
    /// within ~30 µs of the restore on a destination).
    private static let pollAfterAnswerNanoseconds: Int64 = 50_000

    private let state: Mutex<State>
    /// Bumped once a response is in `state`: what `answer()` polls (an atomic, which
    /// ThreadSanitizer sees; it does not see Swift's Mutex on Linux).
    private let responses = Atomic<Int>(0)
    private let resumed: UnsafeMutablePointer<sem_t>
    private let runPage: VcpuRunPage
    private let loop: EventLoop
    /// False under `-accel qtest`: the thread stays parked for good (resume leaves it there).
    private let runsGuest: Bool

    init(runPage: VcpuRunPage, loop: EventLoop, startPaused: Bool, runsGuest: Bool) {
        state = Mutex(State(pauseRequested: startPaused))
        resumed = .allocate(capacity: 1)
        sem_init(resumed, 0, 0)
        self.runPage = runPage
        self.loop = loop
        self.runsGuest = runsGuest
    }

    deinit {
        sem_destroy(resumed)
        resumed.deallocate()
    }

    // MARK: the loop's side

    /// Takes the vCPU out of the guest and keeps it out; returns once it is parked. Called on the
    /// loop thread, which keeps serving the vCPU's pending MMIO hand-offs meanwhile.
    func pause() {
        let thread = state.withLock { state -> pthread_t? in
            state.pauseRequested = true
            return state.thread
        }
        runPage.requestImmediateExit(true)
        if let thread { pthread_kill(thread, VcpuKick.signal) }
        // Blocks until the vCPU says it is parked, running its MMIO hand-offs meanwhile: no spinning.
        while !state.withLock({ $0.paused }) {
            loop.waitForJobs(timeoutMilliseconds: 50)
        }
    }

    /// Ends the vCPU thread (parked or in the guest) and returns once it has, for a machine that
    /// is torn down: the thread's runner, with the vCPU and the port devices, goes with it. On the
    /// loop thread, which serves the vCPU's pending MMIO hand-offs meanwhile.
    func finish() {
        let (thread, finished) = state.withLock { state -> (pthread_t?, Bool) in
            state.finishRequested = true
            state.pauseRequested = false
            return (state.thread, state.finished)
        }
        if finished { return }
        // A thread not attached yet sees the request before it first enters the guest.
        runPage.requestImmediateExit(true)
        if let thread { pthread_kill(thread, VcpuKick.signal) }
        sem_post(resumed)
        while !state.withLock({ $0.finished }) {
            loop.waitForJobs(timeoutMilliseconds: 50)
        }
    }

    func resume() {
        guard runsGuest else { return }
        let wasPaused = state.withLock { state -> Bool in
            state.pauseRequested = false
            return state.paused
        }
        if wasPaused { sem_post(resumed) }
    }

    /// For the next `nanoseconds`, a parked vCPU thread polls for requests and resume instead of
    /// sleeping on its semaphore (and one asleep now wakes to do so), so that the requests of a
    /// switch-over reach it at once rather than after a wake-up of another CPU (QEMU's
    /// poll-max-ns idea, here for the few hundred µs a migration's switch-over takes).
    func keepAwake(forNanoseconds nanoseconds: Int64) {
        let paused = state.withLock { state -> Bool in
            state.pollUntil = MonotonicTime.nanoseconds + nanoseconds
            return state.paused
        }
        if paused { sem_post(resumed) }
    }

    /// Runs `request` on the parked vCPU thread and returns its answer (`submit`, then `answer`).
    func perform(_ request: VcpuRequest) -> VcpuResponse {
        if let refusal = submit(request) { return refusal }
        return answer()
    }

    /// Hands `request` to the parked vCPU thread and returns at once, so the loop can do other
    /// work while the vCPU thread does it; `answer()` then collects the answer, and must be
    /// called before the next request. Answers `.notParked` instead (nothing submitted) for a
    /// vCPU that is not parked. A vCPU asked to pause (`pause`, or started paused for `-S` or an
    /// incoming migration) that has not parked yet is waited for, its MMIO hand-offs served meanwhile.
    func submit(_ request: VcpuRequest) -> VcpuResponse? {
        while true {
            let (parked, parking) = state.withLock { state -> (Bool, Bool) in
                guard state.paused, state.request == nil else { return (false, state.pauseRequested) }
                state.request = request
                state.response = nil
                return (true, true)
            }
            if parked { break }
            guard parking else { return .notParked }
            loop.waitForJobs(timeoutMilliseconds: 50)
        }
        sem_post(resumed)
        return nil
    }

    /// The answer to the submitted request. Polls for a moment (the answer usually comes within
    /// it), then blocks on the loop's job eventfd until the vCPU thread wakes it.
    func answer() -> VcpuResponse {
        let pollEnd = MonotonicTime.nanoseconds + Self.answerPollNanoseconds
        while true {
            if responses.load(ordering: .acquiring) > 0, let response = state.withLock({ state -> VcpuResponse? in
                defer { if state.response != nil { state.response = nil } }
                return state.response
            }) {
                responses.subtract(1, ordering: .relaxed)
                return response
            }
            if MonotonicTime.nanoseconds < pollEnd {
                sched_yield()
            } else {
                loop.waitForJobs(timeoutMilliseconds: 50)
            }
        }
    }

    // MARK: the vCPU thread's side

    /// Called first on the vCPU thread: from now on `pause` can signal it.
    func attachCurrentThread() {
        state.withLock { $0.thread = pthread_self() }
    }

    /// The vCPU thread's last word.
    func threadFinished() {
        state.withLock { $0.finished = true }
        loop.wake()
    }

    /// Called by the vCPU thread before every KVM_RUN: parks it while a pause is requested,
    /// answering requests meanwhile with `answer`, and returns whether it may run the guest
    /// (false once `finish` asked it to end). One lock when nothing is requested: this runs
    /// at every exit.
    func mayRun(answering answer: (VcpuRequest) -> VcpuResponse) -> Bool {
        let (pauseRequested, finishRequested) = state.withLock { ($0.pauseRequested, $0.finishRequested) }
        if finishRequested { return false }
        guard pauseRequested else { return true }
        state.withLock { $0.paused = true }
        loop.wake()
        while true {
            awaitWake()
            let (stillPaused, request, finishing) = state.withLock { state -> (Bool, VcpuRequest?, Bool) in
                if let request = state.request { return (true, request, state.finishRequested) }
                if !state.pauseRequested { state.paused = false }
                return (state.pauseRequested, nil, state.finishRequested)
            }
            if finishing { return false }
            if let request {
                let response = answer(request)
                state.withLock { state in
                    state.request = nil
                    state.response = response
                    // What usually follows an answer (a resume) comes at once; polling on for the
                    // whole `keepAwake` window would only take a CPU from the threads at work.
                    state.pollUntil = min(state.pollUntil, MonotonicTime.nanoseconds + Self.pollAfterAnswerNanoseconds)
                }
                responses.add(1, ordering: .releasing)
                loop.wake()
                continue
            }
            if !stillPaused { return true }
        }
    }

    /// Parked: the next post on the semaphore (a request, resume or finish), polled for while
    /// `keepAwake` asks, slept for otherwise.
    private func awaitWake() {
        let pollUntil = state.withLock { $0.pollUntil }
        while MonotonicTime.nanoseconds < pollUntil {
            if sem_trywait(resumed) == 0 { return }
            sched_yield()
        }
        while sem_wait(resumed) != 0 {}
    }
}
