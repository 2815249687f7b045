import Glibc

/// The jobs of one VM (QEMU's global job list), newest first as QEMU lists them, and the one
/// path their events take to the monitor.
public final class JobRegistry {
    public private(set) var jobs: [Job] = []
    /// Where events go (the monitor's emitter); jobs report nothing before it is set.
    public var onEvent: ((JobEvent) -> Void)?

    public init() {}

    public func job(withID id: String) -> Job? { jobs.first { $0.id == id } }

    /// find_block_job_locked as `block-job-*` commands use it.
    public func blockJob(_ id: String) throws(BlockError) -> Job {
        guard let job = job(withID: id) else {
            throw BlockError("Block job '\(id)' not found", errno: ENOENT, kind: .deviceNotActive)
        }
        return job
    }

    /// find_job_locked as `job-*` commands use it.
    public func anyJob(_ id: String) throws(BlockError) -> Job {
        guard let job = job(withID: id) else { throw BlockError("Job not found", errno: ENOENT) }
        return job
    }

    /// job_create's checks on the id, in QEMU's words.
    func checkNewID(_ id: String) throws(BlockError) {
        guard BlockdevOptions.isWellFormedID(id) else { throw BlockError("Invalid job ID '\(id)'", errno: EINVAL) }
        guard job(withID: id) == nil else { throw BlockError("Job ID '\(id)' already in use", errno: EEXIST) }
    }

    func add(_ job: Job) {
        job.registry = self
        jobs.insert(job, at: 0)
        job.begin()
    }

    func remove(_ job: Job) {
        jobs.removeAll { $0 === job }
    }

    func emit(_ event: JobEvent) { onEvent?(event) }

    /// bdrv_drain_all_begin/end around an operation that settles all I/O (QEMU's `stop`, the
    /// start of a QMP transaction): every job pauses and resumes (standby/ready, paused/running).
    public func pauseAllBriefly() {
        let all = jobs
        for job in all { job.drainedBegin() }
        for job in all { job.drainedEnd() }
    }

    /// Runs `body` once every READY mirror job has copied what is dirty (MirrorJob.whenSynced):
    /// a migration's switch-over waits for it before it inactivates the images.
    public func whenMirrorsSynced(_ body: @escaping () -> Void) {
        let mirrors = jobs.compactMap { $0 as? MirrorJob }.filter { $0.status == .ready }
        guard !mirrors.isEmpty else { return body() }
        var pending = mirrors.count
        for mirror in mirrors {
            mirror.whenSynced {
                pending -= 1
                if pending == 0 { body() }
            }
        }
    }

    /// The jobs holding an edge on any of `nodes` (whose drain pauses them), except `excluded`.
    func jobs(holding nodes: [BlockNode], except excluded: Job?) -> [Job] {
        let ids = Set(nodes.map(ObjectIdentifier.init))
        return jobs.filter { job in job !== excluded && job.edges.contains { ids.contains(ObjectIdentifier($0.node)) } }
    }
}
