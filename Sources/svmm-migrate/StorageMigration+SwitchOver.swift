import QmpClient
import QmpJSON

/// RAM and device state move while the mirror keeps the disks in step.
extension StorageMigration {
    func startIncoming() throws(MigrationFailure) {
        guard needsIncoming else { return }
        try call(.destination, "migrate-incoming", .members(["uri": .string(plan.incomingURI)]))
        log.step("destination: listening for the migration on \(plan.incomingURI)")
    }

    func migrate() throws(MigrationFailure) {
        try call(.source, "migrate", .members(["uri": .string(plan.migrateURI)]))
        setUp.append(.migration)
        log.step("source: migrating to \(plan.migrateURI)")
    }

    func cancelMigration() throws(MigrationFailure) {
        let status = try call(.source, "query-migrate")["status"]?.stringValue
        guard !["completed", "failed", "cancelled", nil].contains(status) else { return }
        try call(.source, "migrate_cancel")
    }

    /// Until the source reports `completed`: that is the switch-over (it stopped, its images
    /// are inactive, the destination has everything). A mirror that fails meanwhile cancels it.
    func waitSourceCompleted() throws(MigrationFailure) {
        let deadline = Deadline(secondsFromNow: plan.timeout)
        while true {
            let migration = try call(.source, "query-migrate")
            let status = migration["status"]?.stringValue ?? "none"
            try sampleProgress(migration: migration)
            if status == "completed" { break }
            if ["failed", "cancelled"].contains(status) {
                throw MigrationFailure(.failedBeforeSwitchOver, "source: migration \(status)"
                                       + (migration["error-desc"]?.stringValue.map { ": \($0)" } ?? ""))
            }
            try observeSourceEvents()
            if case .ended(let error) = job {
                setUp.removeAll { $0 == .mirrorJob(id: plan.jobId) }
                throw MigrationFailure(.failedBeforeSwitchOver, "source: mirror job '\(plan.jobId)' ended during the migration"
                                       + (error.map { ": \($0)" } ?? ""))
            }
            guard !deadline.hasPassed else {
                throw MigrationFailure(.failedBeforeSwitchOver, "source: migration not completed after \(Int(plan.timeout)) s (status '\(status)')")
            }
            try pause()
        }
        switchedOver = true
        setUp.removeAll()
        let total = try call(.source, "query-migrate")
        let figures = ["total-time", "downtime"].compactMap { key in total[key]?.intValue.map { "\(key) \($0) ms" } }
        log.step("source: migration completed" + (figures.isEmpty ? "" : " (\(figures.joined(separator: ", ")))"))
    }

    /// Until the destination says `completed` too (QEMU: after its autostart, if any).
    func waitDestinationCompleted() throws(MigrationFailure) {
        let deadline = Deadline(secondsFromNow: plan.timeout)
        while true {
            let migration = try call(.destination, "query-migrate")
            let status = migration["status"]?.stringValue ?? "none"
            if status == "completed" { break }
            if status == "failed" {
                throw MigrationFailure(.destinationNotRunning, "destination: incoming migration failed"
                                       + (migration["error-desc"]?.stringValue.map { ": \($0)" } ?? "")
                                       + "; the source is stopped (postmigrate): 'cont' it to run on there")
            }
            guard !deadline.hasPassed else {
                throw MigrationFailure(.destinationNotRunning, "destination: incoming migration not completed after \(Int(plan.timeout)) s")
            }
            try pause()
        }
        let status = try call(.destination, "query-status")["status"]?.stringValue ?? "?"
        destinationRunning = status == "running"
        log.step("destination: migration completed, status '\(status)'")
        if destinationRunning {
            log.report(Self.earlyResumeFinding + " (it started by itself at the end of the migration)")
        }
    }
}
