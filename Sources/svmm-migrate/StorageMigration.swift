import QmpClient
import QmpJSON

/// Non-shared storage migration between two VMMs over QMP, in iotest 194's order
/// (qemu-semantics.md J.2): the destination exports its disk writable over NBD, the source
/// mirrors into it, then RAM and devices migrate, the mirror ends, the export stops, and the
/// destination resumes. A small state machine: each `Step` is one short function; before the
/// switch-over every failure undoes what the tool set up (newest first), so the source runs on
/// untouched; after it there is nothing to undo, and the flow stops where it is.
final class StorageMigration {
    enum Step: CaseIterable {
        case inspect, exportTarget, attachNbdTarget, startMirror, waitReady
        case startIncoming, migrate, waitSourceCompleted, waitDestinationCompleted
        case earlyResumeCheck, endMirror, stopExport, resume, verifyPermissions
    }

    /// What the mirror job did last, from its events and query-block-jobs.
    enum JobState: Equatable {
        case notStarted, running, ready
        case ended(error: String?)
    }

    let plan: MigrationPlan
    let log: MigrationLog
    let source: QmpClient
    let destination: QmpClient
    /// What to take back if the flow fails before the switch-over, oldest first.
    var setUp: [SetUpStep] = []
    var switchedOver = false
    var job = JobState.notStarted
    var progress = MigrationProgress()
    var guestDevice = ""
    var needsIncoming = false
    var destinationRunning = false
    /// Left paused as --suspend asks: no resume, no permission check.
    var suspended = false
    /// After the switch-over nothing is undone; these say what a failure leaves in place.
    var nbdNodeDeleted = false
    var exportStopped = false
    let pollInterval = 0.2

    /// Connects to both monitors; either unreachable is `.unreachable`.
    init(plan: MigrationPlan, log: MigrationLog) throws(MigrationFailure) {
        self.plan = plan
        self.log = log
        source = try Self.open(.source, plan.source, timeout: min(plan.timeout, 10), log: log)
        destination = try Self.open(.destination, plan.destination, timeout: min(plan.timeout, 10), log: log)
    }

    private static func open(_ side: Side, _ address: QmpAddress, timeout: Double, log: MigrationLog) throws(MigrationFailure) -> QmpClient {
        do {
            let client = try QmpClient(connectingTo: address, timeout: timeout)
            log.step("\(side): connected to \(address) (version \(client.version))")
            return client
        } catch {
            // QEMU takes the connection into its backlog but greets only once its one client has gone.
            let hint = if case .timedOut = error { " (is another QMP client connected? QEMU serves one at a time)" } else { "" }
            throw MigrationFailure(.unreachable, "\(side): \(error)\(hint)")
        }
    }

    /// Runs the whole flow and says how it ended.
    func run() -> ExitStatus {
        do {
            let steps = Step.allCases.filter { $0 != .earlyResumeCheck || (plan.earlyResumeCheck && !plan.suspend) }
            for step in steps { try perform(step) }
            return .permissionsInForce
        } catch {
            log.refusal(error.message)
            if switchedOver { reportLeftovers() } else { undoAll() }
            return error.status
        }
    }

    private func perform(_ step: Step) throws(MigrationFailure) {
        switch step {
        case .inspect: try inspect()
        case .exportTarget: try exportTarget()
        case .attachNbdTarget: try attachNbdTarget()
        case .startMirror: try startMirror()
        case .waitReady: try waitReady()
        case .startIncoming: try startIncoming()
        case .migrate: try migrate()
        case .waitSourceCompleted: try waitSourceCompleted()
        case .waitDestinationCompleted: try waitDestinationCompleted()
        case .earlyResumeCheck: try earlyResumeCheck()
        case .endMirror: try endMirror()
        case .stopExport: try stopExport()
        case .resume: try resume()
        case .verifyPermissions: try verifyPermissions()
        }
    }

    /// The exit status of a failure now: before the switch-over the source runs on.
    var failureStatus: ExitStatus { switchedOver ? .destinationNotRunning : .failedBeforeSwitchOver }

    /// Runs one command; a refusal becomes a failure naming the side and QEMU's own text.
    @discardableResult
    func call(_ side: Side, _ command: String, _ arguments: JSONValue? = nil, timeout: Double = 60) throws(MigrationFailure) -> JSONValue {
        let client = side == .source ? source : destination
        do {
            return try client.execute(command, arguments, timeout: timeout)
        } catch {
            if case .commandFailed(_, _, let desc) = error {
                throw MigrationFailure(switchedOver ? .destinationNotRunning : .refusedBeforeSwitchOver,
                                       "\(side) refused \(command): \(desc)")
            }
            throw MigrationFailure(failureStatus, "\(side): \(error)")
        }
    }

    private func undoAll() {
        while let step = setUp.popLast() {
            do {
                try undo(step)
                log.step("undone: \(step.undoDescription)")
            } catch {
                log.refusal("could not undo \(step.undoDescription): \(error.message)")
            }
        }
    }

    /// What is still in place after a failure past the switch-over, for the user to finish by hand.
    private func reportLeftovers() {
        var left: [String] = []
        if case .ended = job {} else { left.append("source mirror job '\(plan.jobId)'") }
        if !nbdNodeDeleted { left.append("source NBD node '\(plan.nbdNodeName)'") }
        if !exportStopped { left.append("destination NBD server") }
        guard !left.isEmpty else { return }
        left.append(destinationRunning ? "the destination running" : "the destination paused")
        log.refusal("after the switch-over nothing is undone; left as it is: \(left.joined(separator: ", "))")
    }

    private func undo(_ step: SetUpStep) throws(MigrationFailure) {
        switch step {
        case .nbdServer: try call(.destination, "nbd-server-stop")
        case .nbdNode(let name): try call(.source, "blockdev-del", .members(["node-name": .string(name)]))
        case .mirrorJob: try cancelJob(force: true)
        case .migration: try cancelMigration()
        }
    }

    /// Reads the source's events into `job`; the mirror's end (COMPLETED or CANCELLED) with its error.
    func observeSourceEvents() throws(MigrationFailure) {
        let events: [QmpEvent]
        do { events = try source.takeEvents() } catch { throw MigrationFailure(failureStatus, "source: \(error)") }
        for event in events where event.data["device"]?.stringValue == plan.jobId {
            switch event.name {
            case "BLOCK_JOB_READY": if job == .running { job = .ready }
            case "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED": job = .ended(error: event.data["error"]?.stringValue)
            default: break
            }
        }
    }

    /// Samples the mirror's and the migration's progress on the source and shows the line.
    func sampleProgress(migration: JSONValue? = nil) throws(MigrationFailure) {
        progress.update(jobs: try call(.source, "query-block-jobs"), jobId: plan.jobId)
        if let migration { progress.update(migration: migration) }
        log.progress(progress, now: Deadline.now())
    }

    /// Waits a poll interval for the source's events.
    func pause() throws(MigrationFailure) {
        do { try source.pump(timeout: pollInterval) } catch { throw MigrationFailure(failureStatus, "source: \(error)") }
    }
}
