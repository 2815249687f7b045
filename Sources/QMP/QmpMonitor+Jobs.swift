import Block

/// The job commands (qmp_block_job_* and qmp_job_* in blockdev.c / job-qmp.c), the job queries
/// and the job events, in QEMU 7.2's shapes and words.
extension QmpMonitor {
    func jobCommands() -> [QmpCommand] {
        let device: [QmpArguments.Member] = [.required("device", .string)]
        let id: [QmpArguments.Member] = [.required("id", .string)]
        return [
            QmpCommand("query-block-jobs") { [unowned self] _ in .array(jobs.jobs.map(Self.blockJobInfo)) },
            QmpCommand("query-jobs") { [unowned self] _ in .array(jobs.jobs.map(Self.jobInfo)) },
            QmpCommand("block-job-pause", device) { [unowned self] arguments throws(QmpError) in
                try onBlockJob(arguments.string("device")!) { job throws(BlockError) in try job.userPause() }
            },
            QmpCommand("block-job-resume", device) { [unowned self] arguments throws(QmpError) in
                try onBlockJob(arguments.string("device")!) { job throws(BlockError) in try job.userResume() }
            },
            QmpCommand("block-job-complete", device) { [unowned self] arguments throws(QmpError) in
                try onBlockJob(arguments.string("device")!) { job throws(BlockError) in try job.userComplete() }
            },
            QmpCommand("block-job-set-speed", device + [.required("speed", .int)]) { [unowned self] arguments throws(QmpError) in
                try onBlockJob(arguments.string("device")!) { job throws(BlockError) in try job.setSpeed(arguments.int("speed")!) }
            },
            QmpCommand("block-job-cancel", device + [.optional("force", .bool)]) { [unowned self] arguments throws(QmpError) in
                let force = arguments.bool("force") ?? false
                return try onBlockJob(arguments.string("device")!) { job throws(BlockError) in
                    if job.userPaused && !force {
                        throw BlockError("The block job for device '\(job.id)' is currently paused")
                    }
                    try job.userCancel(force: force)
                }
            },
            QmpCommand("block-job-finalize", id) { [unowned self] arguments throws(QmpError) in
                try onBlockJob(arguments.string("id")!) { job throws(BlockError) in try job.userFinalize() }
            },
            QmpCommand("block-job-dismiss", id) { [unowned self] arguments throws(QmpError) in
                try onBlockJob(arguments.string("id")!) { job throws(BlockError) in try job.userDismiss() }
            },
            QmpCommand("job-pause", id) { [unowned self] arguments throws(QmpError) in
                try onJob(arguments.string("id")!) { job throws(BlockError) in try job.userPause() }
            },
            QmpCommand("job-resume", id) { [unowned self] arguments throws(QmpError) in
                try onJob(arguments.string("id")!) { job throws(BlockError) in try job.userResume() }
            },
            QmpCommand("job-complete", id) { [unowned self] arguments throws(QmpError) in
                try onJob(arguments.string("id")!) { job throws(BlockError) in try job.userComplete() }
            },
            // qmp_job_cancel cancels with force, unlike block-job-cancel's default.
            QmpCommand("job-cancel", id) { [unowned self] arguments throws(QmpError) in
                try onJob(arguments.string("id")!) { job throws(BlockError) in try job.userCancel(force: true) }
            },
            QmpCommand("job-finalize", id) { [unowned self] arguments throws(QmpError) in
                try onJob(arguments.string("id")!) { job throws(BlockError) in try job.userFinalize() }
            },
            QmpCommand("job-dismiss", id) { [unowned self] arguments throws(QmpError) in
                try onJob(arguments.string("id")!) { job throws(BlockError) in try job.userDismiss() }
            },
        ]
    }

    var jobs: JobRegistry { machine.graph.jobs }

    private func onBlockJob(_ id: String, _ verb: (Job) throws(BlockError) -> Void) throws(QmpError) -> JSONValue {
        try block { () throws(BlockError) in try verb(try jobs.blockJob(id)) }
        return .emptyObject
    }

    private func onJob(_ id: String, _ verb: (Job) throws(BlockError) -> Void) throws(QmpError) -> JSONValue {
        try block { () throws(BlockError) in try verb(try jobs.anyJob(id)) }
        return .emptyObject
    }

    /// BlockJobInfo, in the member order QEMU 7.2 prints.
    static func blockJobInfo(_ job: Job) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("auto-finalize", .bool(job.autoFinalize)), ("io-status", .string(job.ioStatus)), ("device", .string(job.id)),
            ("auto-dismiss", .bool(job.autoDismiss)), ("busy", .bool(job.busy)), ("len", .int(job.progressTotal)),
            ("offset", .int(job.progressCurrent)), ("status", .string(job.status.rawValue)), ("paused", .bool(job.isPaused)),
            ("speed", .int(job.speed)), ("ready", .bool(job.isReady)), ("type", .string(job.type)),
        ]
        if let error = job.errorText { members.append(("error", .string(error))) }
        return .object(members)
    }

    /// JobInfo.
    static func jobInfo(_ job: Job) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("current-progress", .int(job.progressCurrent)), ("status", .string(job.status.rawValue)),
            ("total-progress", .int(job.progressTotal)), ("type", .string(job.type)), ("id", .string(job.id)),
        ]
        if let error = job.errorText { members.append(("error", .string(error))) }
        return .object(members)
    }

    /// The QMP event for each job event (job.c and blockjob.c's notifiers).
    func emitJobEvent(_ event: JobEvent) {
        switch event {
        case .statusChanged(let job):
            emit("JOB_STATUS_CHANGE", data: .object([("status", .string(job.status.rawValue)), ("id", .string(job.id))]))
        case .ready(let job):
            emit("BLOCK_JOB_READY", data: Self.progressEventData(job, withError: false))
        case .pending(let job):
            emit("BLOCK_JOB_PENDING", data: .object([("type", .string(job.type)), ("id", .string(job.id))]))
        case .completed(let job):
            emit("BLOCK_JOB_COMPLETED", data: Self.progressEventData(job, withError: true))
        case .cancelled(let job):
            emit("BLOCK_JOB_CANCELLED", data: Self.progressEventData(job, withError: false))
        case .ioError(let job, let operation, let action):
            emit("BLOCK_JOB_ERROR", data: .object([
                ("device", .string(job.id)), ("operation", .string(operation)), ("action", .string(action.rawValue)),
            ]))
        }
    }

    /// BLOCK_JOB_READY / _CANCELLED / _COMPLETED data; `error` only on a failed completion.
    private static func progressEventData(_ job: Job, withError: Bool) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("device", .string(job.id)), ("len", .int(job.progressTotal)), ("offset", .int(job.progressCurrent)),
            ("speed", .int(job.speed)), ("type", .string(job.type)),
        ]
        if withError, let error = job.errorText { members.append(("error", .string(error))) }
        return .object(members)
    }
}
