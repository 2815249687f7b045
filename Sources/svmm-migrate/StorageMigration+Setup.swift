import QmpClient
import QmpJSON

/// Before the switch-over: check both sides, export the destination's disk, mirror into it.
extension StorageMigration {
    /// Both sides are in a state the flow can start from, and the destination's guest device is known.
    func inspect() throws(MigrationFailure) {
        let destinationStatus = try call(.destination, "query-status")["status"]?.stringValue ?? "?"
        guard destinationStatus == "inmigrate" else {
            throw MigrationFailure(.refusedBeforeSwitchOver,
                                   "destination is not waiting for an incoming migration (status '\(destinationStatus)'): start it with -incoming defer")
        }
        let sourceStatus = try call(.source, "query-status")["status"]?.stringValue ?? "?"
        guard ["running", "paused", "prelaunch"].contains(sourceStatus) else {
            throw MigrationFailure(.refusedBeforeSwitchOver, "source cannot migrate from status '\(sourceStatus)'")
        }
        let device = try DevicePermissions.find(in: try call(.destination, "x-debug-query-block-graph"),
                                                device: plan.guestDevice, node: plan.targetNode).get()
        guestDevice = device.device
        // `-incoming defer` before migrate-incoming: {} (or status none); listening already
        // (`-incoming unix:PATH`, or migrate-incoming done): the socket address, or a status.
        let incoming = try call(.destination, "query-migrate")
        let status = incoming["status"]?.stringValue ?? "none"
        needsIncoming = incoming["socket-address"] == nil && status == "none"
        log.step("source: status \(sourceStatus); destination: status \(destinationStatus), \(device.summary)"
                 + (needsIncoming ? "" : ", already listening for the migration"))
    }

    func exportTarget() throws(MigrationFailure) {
        try call(.destination, "nbd-server-start", .members(["addr": plan.nbd.legacySocketAddress]))
        setUp.append(.nbdServer)
        try call(.destination, "nbd-server-add", .members([
            "device": .string(plan.targetNode), "name": .string(plan.exportName), "writable": .bool(true),
        ]))
        log.step("destination: node '\(plan.targetNode)' exported writable as '\(plan.exportName)' on \(plan.nbd)")
    }

    func attachNbdTarget() throws(MigrationFailure) {
        try call(.source, "blockdev-add", .members([
            "driver": .string("nbd"), "node-name": .string(plan.nbdNodeName),
            "server": plan.nbd.flatSocketAddress, "export": .string(plan.exportName),
        ]))
        setUp.append(.nbdNode(name: plan.nbdNodeName))
        log.step("source: NBD node '\(plan.nbdNodeName)' connected to the export")
    }

    func startMirror() throws(MigrationFailure) {
        try call(.source, "blockdev-mirror", .members([
            "job-id": .string(plan.jobId), "device": .string(plan.device),
            "target": .string(plan.nbdNodeName), "sync": .string("full"), "speed": .int(plan.mirrorSpeed),
        ]))
        job = .running
        setUp.append(.mirrorJob(id: plan.jobId))
        log.step("source: blockdev-mirror '\(plan.device)' -> '\(plan.nbdNodeName)' (job '\(plan.jobId)', sync full)")
    }

    /// Until BLOCK_JOB_READY (or query-block-jobs says ready); a job that ends first is a failure.
    func waitReady() throws(MigrationFailure) {
        let deadline = Deadline(secondsFromNow: plan.timeout)
        while true {
            try observeSourceEvents()
            if case .ended(let error) = job {
                setUp.removeAll { $0 == .mirrorJob(id: plan.jobId) }
                throw MigrationFailure(.failedBeforeSwitchOver, "source: mirror job '\(plan.jobId)' ended before READY"
                                       + (error.map { ": \($0)" } ?? ""))
            }
            let jobs = try call(.source, "query-block-jobs")
            progress.update(jobs: jobs, jobId: plan.jobId)
            log.progress(progress, now: Deadline.now())
            let entry = jobs.arrayValue?.first { $0["device"]?.stringValue == plan.jobId }
            if job == .ready || entry?["ready"]?.boolValue == true { break }
            if entry == nil { try awaitJobEndEvent() }
            guard !deadline.hasPassed else {
                throw MigrationFailure(.failedBeforeSwitchOver, "source: mirror job '\(plan.jobId)' not READY after \(Int(plan.timeout)) s")
            }
            try pause()
        }
        job = .ready
        log.step("source: mirror job '\(plan.jobId)' READY: the destination's disk follows the source's")
    }

    /// The job left query-block-jobs: its end event is on the way (or was lost with the job).
    private func awaitJobEndEvent() throws(MigrationFailure) {
        let deadline = Deadline(secondsFromNow: 2)
        while !deadline.hasPassed {
            try observeSourceEvents()
            if case .ended = job { return }
            try pause()
        }
        job = .ended(error: "the job is gone from query-block-jobs")
    }

    /// `block-job-cancel` and wait until the job has ended; after READY a soft cancel ends it
    /// without switching (BLOCK_JOB_COMPLETED), `force` aborts it (BLOCK_JOB_CANCELLED).
    func cancelJob(force: Bool) throws(MigrationFailure) {
        try observeSourceEvents()
        if case .ended = job { return }
        try call(.source, "block-job-cancel", .members(["device": .string(plan.jobId), "force": .bool(force)]))
        let deadline = Deadline(secondsFromNow: plan.timeout)
        while true {
            try observeSourceEvents()
            if case .ended = job { return }
            let jobs = try call(.source, "query-block-jobs")
            if jobs.arrayValue?.contains(where: { $0["device"]?.stringValue == plan.jobId }) != true {
                job = .ended(error: nil)
                return
            }
            guard !deadline.hasPassed else {
                throw MigrationFailure(failureStatus, "source: mirror job '\(plan.jobId)' did not end within \(Int(plan.timeout)) s of block-job-cancel")
            }
            try pause()
        }
    }
}
