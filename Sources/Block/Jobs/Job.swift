import Glibc

/// A long-running block operation (QEMU's Job and BlockJob in job.c / blockjob.c): a state
/// machine over `JobStatus` moved only along QEMU's transition table, verbs checked against
/// QEMU's verb table, and one event path. The work itself is a subclass's (MirrorJob): it calls
/// `pausePoint()` between steps and `workFinished(ret:)` when its run is over; the base class
/// then takes the job through waiting, pending, finalization and conclusion as job.c does.
/// A job is a BlockParent of the nodes it holds (named "mirror job 'job0'" in permission errors).
public class Job: BlockParent {
    public let id: String
    /// QAPI JobType: "mirror".
    public let type: String
    public let autoFinalize: Bool
    public let autoDismiss: Bool
    public private(set) var status: JobStatus = .undefined
    /// Bytes per second, 0 for unlimited (block-job-set-speed).
    public internal(set) var speed: Int64 = 0
    /// Progress (query-jobs current-progress/total-progress, BLOCK_JOB_* offset/len).
    public internal(set) var progressCurrent: Int64 = 0
    public internal(set) var progressTotal: Int64 = 0
    /// The error text once the job failed (QEMU's job->err, strerror of the return value).
    public private(set) var errorText: String?
    /// io-status: "ok", or "failed"/"nospace" while stopped on an I/O error.
    public internal(set) var ioStatus = "ok"
    /// Whether the job's work is active right now (query-block-jobs `busy`).
    public internal(set) var busy = false
    /// Edges this job holds ("main node", "source", "target"), for queries and to release them.
    public internal(set) var edges: [BdrvChild] = []

    let graph: BlockGraph
    weak var registry: JobRegistry?
    private var pauseCount = 0
    public private(set) var userPaused = false
    /// job->cancelled (a cancel was asked for) and job->force_cancel.
    private(set) var cancelRequested = false
    private var forceCancel = false
    private var ret: Int32 = 0
    private var started = false
    /// Past its run (waiting, pending, aborting …): QEMU's deferred_to_main_loop.
    private var runFinished = false

    init(id: String, type: String, graph: BlockGraph, autoFinalize: Bool, autoDismiss: Bool) {
        self.id = id
        self.type = type
        self.graph = graph
        self.autoFinalize = autoFinalize
        self.autoDismiss = autoDismiss
    }

    public var parentDescription: String { "\(type) job '\(id)'" }

    public var isPaused: Bool { pauseCount > 0 }
    public var isReady: Bool { status == .ready || status == .standby }
    /// job_is_cancelled: cancelled for real (not a mirror's soft cancel after READY).
    public var isCancelled: Bool { cancelRequested && forceCancel }

    // MARK: what a concrete job provides (job.c's JobDriver callbacks)

    /// Starts the work (the job's coroutine entry).
    func run() { workFinished(ret: 0) }
    /// The work should continue after a pause or a change (speed, cancel, complete).
    func wake() {}
    /// JobDriver.complete: the user asked a READY job to complete.
    func complete() throws(BlockError) {}
    /// JobDriver.cancel: returns whether the cancel is a forced one.
    func cancelled(force: Bool) -> Bool { true }
    /// JobDriver.prepare: the job's effect on the graph (a mirror's switch); an errno on failure.
    func prepare() -> Int32 { 0 }
    func commit() {}
    func abort() {}
    func clean() {}

    // MARK: transitions and events

    func transition(to next: JobStatus) {
        // QEMU asserts; a release build refuses the step rather than stopping the VM.
        assert(status.canMove(to: next), "job \(id): \(status) -> \(next) is not in QEMU's JobSTT")
        guard status.canMove(to: next) else { return }
        let changed = status != next
        status = next
        // job_state_transition: an event only for a real change (aborting may repeat).
        if changed { registry?.emit(.statusChanged(self)) }
    }

    /// job_create's last step and job_start.
    func begin() {
        transition(to: .created)
    }

    func start() {
        started = true
        busy = true
        transition(to: .running)
        run()
    }

    /// job_transition_to_ready.
    func becomeReady() {
        transition(to: .ready)
        registry?.emit(.ready(self))
    }

    /// job_pause_point: if a pause was asked for, the job pauses here; returns true while paused
    /// (the work waits for `wake()`).
    func pausePoint() -> Bool {
        guard pauseCount > 0, !isCancelled else { return false }
        if status == .running { transition(to: .paused) } else if status == .ready { transition(to: .standby) }
        busy = false
        return true
    }

    func pause() { pauseCount += 1 }

    /// child_job_drained_begin: a drained section over a node the job holds pauses it (and QEMU's
    /// job is at a pause point by the time the drain has settled, so the state changes now).
    func drainedBegin() {
        pause()
        guard !runFinished else { return }
        if status == .running { transition(to: .paused) } else if status == .ready { transition(to: .standby) }
    }

    /// child_job_drained_end.
    func drainedEnd() { resume() }

    func resume() {
        guard pauseCount > 0 else { return }
        pauseCount -= 1
        guard pauseCount == 0 else { return }
        if status == .paused { transition(to: .running) } else if status == .standby { transition(to: .ready) }
        busy = true
        wake()
    }

    /// The error policy said stop (after BLOCK_JOB_ERROR): the job pauses until block-job-resume.
    func stopOnError(ioStatus failure: String) {
        ioStatus = failure
        // block_job_error_action: several failed requests pause the job once.
        guard !userPaused else { return }
        userPaused = true
        pause()
    }

    // MARK: verbs (qmp_job_* / qmp_block_job_*)

    public func userPause() throws(BlockError) {
        try JobVerb.pause.check(self)
        guard !userPaused else { throw BlockError("Job is already paused", errno: EPERM) }
        userPaused = true
        pause()
        wake()
    }

    public func userResume() throws(BlockError) {
        try JobVerb.resume.check(self)
        guard userPaused else { throw BlockError("Can't resume a job that was not paused", errno: EPERM) }
        userPaused = false
        ioStatus = "ok"
        resume()
    }

    public func setSpeed(_ newSpeed: Int64) throws(BlockError) {
        try JobVerb.setSpeed.check(self)
        guard newSpeed >= 0 else { throw BlockError("Parameter 'speed' expects a non-negative value", errno: EINVAL) }
        speed = newSpeed
        wake()
    }

    public func userComplete() throws(BlockError) {
        try JobVerb.complete.check(self)
        if pauseCount > 0 || isCancelled {
            throw BlockError("The active block job '\(id)' cannot be completed", errno: EBUSY)
        }
        try complete()
        wake()
    }

    /// job_user_cancel / job_cancel.
    public func userCancel(force: Bool) throws(BlockError) {
        try JobVerb.cancel.check(self)
        let forced = cancelled(force: force)
        if userPaused {
            userPaused = false
            resume()
        }
        cancelRequested = true
        forceCancel = forceCancel || forced
        if !started {
            workFinished(ret: 0)
        } else if runFinished {
            if isCancelled { abortTransaction() }
        } else {
            wake()
        }
    }

    public func userFinalize() throws(BlockError) {
        try JobVerb.finalize.check(self)
        finalize()
    }

    public func userDismiss() throws(BlockError) {
        try JobVerb.dismiss.check(self)
        dismiss()
    }

    // MARK: the end of a job (job_completed and what follows)

    /// job_completed: the work is over with `ret` (0 or a negative errno).
    func workFinished(ret code: Int32, error text: String? = nil) {
        guard !runFinished else { return }
        runFinished = true
        busy = false
        // A drain that began while the run was ending left the job at a pause point: it leaves it.
        if status == .paused { transition(to: .running) } else if status == .standby { transition(to: .ready) }
        if text != nil, errorText == nil { errorText = text }
        ret = code
        updateReturnCode()
        if ret != 0 { abortTransaction() } else { succeed() }
    }

    /// job_update_rc: a cancelled job fails with ECANCELED; a failure moves to aborting.
    private func updateReturnCode() {
        if ret == 0 && isCancelled { ret = -ECANCELED }
        guard ret != 0 else { return }
        if errorText == nil { errorText = String(cString: strerror(-ret)) }
        if status.canMove(to: .aborting) { transition(to: .aborting) }
    }

    /// job_completed_txn_success and job_transition_to_pending.
    private func succeed() {
        transition(to: .waiting)
        transition(to: .pending)
        // job_transition_to_pending: BLOCK_JOB_PENDING only where the user finalizes.
        if !autoFinalize { registry?.emit(.pending(self)) }
        if autoFinalize { finalize() }
    }

    /// job_do_finalize: prepare (the graph change), then finalize or abort.
    private func finalize() {
        if ret == 0 {
            ret = prepare()
            updateReturnCode()
        }
        if ret != 0 { abortTransaction() } else { finalizeSingle() }
    }

    /// job_completed_txn_abort for a transaction of one job.
    private func abortTransaction() {
        finalizeSingle()
    }

    /// job_finalize_single: commit or abort, clean, the completion event, conclusion.
    private func finalizeSingle() {
        // A job cancelled while pending fails here, late (job_finalize_single's job_update_rc).
        updateReturnCode()
        if ret == 0 { commit() } else { abort() }
        clean()
        if started { registry?.emit(isCancelled ? .cancelled(self) : .completed(self)) }
        transition(to: .concluded)
        if autoDismiss || !started { dismiss() }
    }

    /// job_do_dismiss (also job_early_fail for a job that failed while being created).
    func dismiss() {
        transition(to: .null)
        registry?.remove(self)
    }
}
