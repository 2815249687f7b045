import QmpClient
import QmpJSON

/// After the switch-over: the early resume test, the mirror's and the export's end, the resume
/// and the check that the guest device's permissions are in force.
extension StorageMigration {
    static let earlyResumeFinding =
        "destination resumed while the NBD export was still writable: the guest device's permissions were never applied"

    /// Tries to run the destination while its disk is still exported writable: svmm must refuse
    /// (the seed's deferred permissions cannot be applied); QEMU 7.2 runs (or ran already, autostart).
    func earlyResumeCheck() throws(MigrationFailure) {
        let during = try devicePermissions()
        log.step("destination: while exported, \(during.summary)")
        if destinationRunning { return }  // reported when the migration completed
        do {
            try destination.execute("cont")
        } catch {
            guard case .commandFailed(_, _, let desc) = error else { throw MigrationFailure(.destinationNotRunning, "destination: \(error)") }
            let status = try call(.destination, "query-status")["status"]?.stringValue ?? "?"
            log.report("destination refused to resume while the NBD export is writable (status stays '\(status)'): \(desc)")
            if status == "running" { destinationRunning = true }
            return
        }
        destinationRunning = true
        log.report(Self.earlyResumeFinding + " (cont was accepted)")
    }

    /// A soft cancel after READY: the mirror ends without switching, the NBD node goes.
    func endMirror() throws(MigrationFailure) {
        try cancelJob(force: false)
        if case .ended(let error?) = job {
            throw MigrationFailure(.destinationNotRunning, "source: mirror job '\(plan.jobId)' ended with an error: \(error)")
        }
        log.step("source: mirror job '\(plan.jobId)' ended (block-job-cancel)")
        do {
            try call(.source, "blockdev-del", .members(["node-name": .string(plan.nbdNodeName)]))
            nbdNodeDeleted = true
        } catch {
            log.refusal("\(error.message) (the NBD node stays on the source)")
        }
    }

    func stopExport() throws(MigrationFailure) {
        try call(.destination, "nbd-server-stop")
        exportStopped = true
        log.step("destination: NBD server stopped")
    }

    func resume() throws(MigrationFailure) {
        if plan.suspend, !destinationRunning {
            suspended = true
            log.report("destination left paused as --suspend asks; its guest device's permissions are applied when it is resumed")
            return
        }
        if !destinationRunning {
            do {
                try destination.execute("cont")
            } catch {
                throw MigrationFailure(.destinationNotRunning, "destination refused to resume after nbd-server-stop: \(error)")
            }
        }
        let status = try call(.destination, "query-status")["status"]?.stringValue ?? "?"
        guard status == "running" else {
            throw MigrationFailure(.destinationNotRunning, "destination does not run after cont (status '\(status)')")
        }
        destinationRunning = true
        log.step("destination: running")
    }

    func verifyPermissions() throws(MigrationFailure) {
        let device = try devicePermissions()
        if suspended {
            log.step("destination: paused, \(device.summary)")
            return
        }
        guard device.inForce else {
            throw MigrationFailure(.permissionsNotInForce,
                                   "destination runs, but its guest device's permissions are not in force: \(device.summary)")
        }
        log.report("destination runs with its guest device's permissions in force: \(device.summary)")
    }

    private func devicePermissions() throws(MigrationFailure) -> DevicePermissions {
        let graph = try call(.destination, "x-debug-query-block-graph")
        switch DevicePermissions.find(in: graph, device: guestDevice, node: plan.targetNode) {
        case .success(let device): return device
        case .failure(let failure): throw MigrationFailure(failureStatus, failure.message)
        }
    }
}
