import Glibc
import Machine

/// The migration state of one VM (QEMU's MigrationState and MigrationIncomingState): the
/// capabilities and parameters, the outgoing migration (one at a time) and the incoming one.
/// What QMP's migration commands call; events go out through `onEvent`.
/// Loop-owned (not Sendable): the migration threads call back through a LoopBound.
public final class MigrationController {
    public let machine: Machine
    public var onEvent: ((MigrationEvent) -> Void)?
    public private(set) var capabilities: Set<MigrationCapability> = []
    public private(set) var parameters = MigrationParameters()
    private var outgoing: OutgoingMigration?
    public private(set) var outgoingStatus: MigrationStatus = .none
    private var outgoingError: String?
    private var incoming: IncomingMigration?
    public private(set) var incomingStatus: MigrationStatus = .none
    /// `-incoming defer`: migrate-incoming may start it.
    private var deferred = false

    public init(machine: Machine) {
        self.machine = machine
    }

    /// QEMU's migration_is_running(s->state): the outgoing side only (a destination may still
    /// set its capabilities while it waits).
    private var isRunning: Bool { outgoingStatus.isRunning }

    /// The controller for its migrations' callbacks, which run on the loop: unowned, as the
    /// controller owns the migrations.
    private var callbackTarget: LoopBound<() -> MigrationController> { machine.bind { [unowned self] in self } }

    private func emit(_ status: MigrationStatus) {
        if capabilities.contains(.events) { onEvent?(.status(status)) }
    }

    private func setOutgoing(_ status: MigrationStatus) {
        outgoingStatus = status
        emit(status)
    }

    private func setIncoming(_ status: MigrationStatus) {
        incomingStatus = status
        emit(status)
    }

    // MARK: capabilities and parameters

    /// migrate-set-capabilities: all or nothing; none while a migration runs.
    public func setCapabilities(_ changes: [(MigrationCapability, Bool)]) throws(MigrationError) {
        if isRunning { throw .inProgress }
        for (capability, state) in changes where state && !capability.isImplemented {
            throw MigrationError("Capability '\(capability.rawValue)' is not supported by svmm")
        }
        for (capability, state) in changes {
            if state { capabilities.insert(capability) } else { capabilities.remove(capability) }
        }
    }

    public func setParameters(maxBandwidth: UInt64?, downtimeLimit: UInt64?) throws(MigrationError) {
        var next = parameters
        if let downtimeLimit { next.downtimeLimit = try MigrationParameters.checkDowntime(downtimeLimit) }
        if let maxBandwidth { next.maxBandwidth = try MigrationParameters.checkBandwidth(maxBandwidth) }
        parameters = next
        outgoing?.setParameters(next)
    }

    // MARK: outgoing

    /// qmp_migrate: checks, then the sender thread; `{}` at once, progress in events and query-migrate.
    public func migrate(to text: String) throws(MigrationError) {
        if isRunning { throw .inProgress }
        if machine.runState == .inmigrate { throw .waitingForIncoming }
        outgoingError = nil
        setOutgoing(.setup)
        let parsed: MigrationUri?
        do throws(MigrationError) { parsed = try MigrationUri.parse(text) } catch {
            // A malformed address fails through migrate_fd_error, which keeps it as error-desc ...
            outgoingError = error.description
            setOutgoing(.failed)
            throw error
        }
        guard let uri = parsed else {
            // ... an unknown protocol fails without one (qmp_migrate).
            setOutgoing(.failed)
            throw .badProtocol
        }
        let this = callbackTarget
        let migration = OutgoingMigration(
            machine: machine, uri: uri, parameters: parameters,
            pauseBeforeSwitchover: capabilities.contains(.pauseBeforeSwitchover),
            migratesBitmaps: capabilities.contains(.dirtyBitmaps),
            setStatus: { status in this.value().setOutgoing(status) },
            emitPass: { pass in
                let controller = this.value()
                if controller.capabilities.contains(.events) { controller.onEvent?(.pass(pass)) }
            },
            finished: { result in this.value().outgoingFinished(result) })
        outgoing = migration
        do { try migration.start() } catch {
            outgoingError = error.description
            setOutgoing(.failed)
            throw error
        }
    }

    private func outgoingFinished(_ result: Result<Void, MigrationFailure>) {
        switch result {
        case .success: setOutgoing(.completed)
        case .failure(.cancelled): setOutgoing(.cancelled)
        case .failure(.failed(let message)):
            outgoingError = message
            setOutgoing(.failed)
        }
    }

    /// migrate_cancel: cancelling now, cancelled once the sender has stopped and the VM is back.
    public func cancel() {
        guard let outgoing, outgoingStatus.isRunning, outgoingStatus != .cancelling else { return }
        setOutgoing(.cancelling)
        outgoing.cancel()
    }

    /// qmp_migrate_start_postcopy: postcopy is a capability (postcopy-ram, or dirty-bitmaps,
    /// which svmm postcopies alone); a migration must have been started, and one that has
    /// finished is no error (that would race with the command).
    public func startPostcopy() throws(MigrationError) {
        guard capabilities.contains(.dirtyBitmaps) || capabilities.contains(.postcopyRam) else {
            throw MigrationError("Enable postcopy with migrate_set_capability before the start of migration")
        }
        guard outgoingStatus != .none else { throw MigrationError("Postcopy must be started after migration has been started") }
        outgoing?.requestPostcopy()
    }

    /// migrate-continue {state}: only in that state (pause-before-switchover).
    public func continueSwitchover(from state: String) throws(MigrationError) {
        guard outgoingStatus.rawValue == state, let outgoing else {
            throw MigrationError("Migration not in expected state: \(outgoingStatus.rawValue)")
        }
        outgoing.continueSwitchover()
    }

    // MARK: incoming

    /// `-incoming URI` at startup, or migrate-incoming after `-incoming defer`. The `setup`
    /// event is sent whether or not `events` is on, as QEMU's qemu_start_incoming_migration does.
    public func startIncoming(_ text: String, fromCommandLine: Bool) throws(MigrationError) {
        if !fromCommandLine {
            if incoming != nil || incomingStatus != .none { throw MigrationError("The incoming migration has already been started") }
            guard deferred else { throw MigrationError("'-incoming' was not specified on the command line") }
        }
        // qemu_init passes `-incoming defer` to no one; migrate-incoming has no `defer` protocol.
        if text == "defer" && fromCommandLine {
            deferred = true
            return
        }
        // qemu_start_incoming_migration announces `setup` before it looks at the URI, so a
        // migrate-incoming that fails sends it too.
        onEvent?(.status(.setup))
        guard let uri = try MigrationUri.parse(text) else { throw MigrationError("unknown migration protocol: \(text)") }
        let this = callbackTarget
        let migration = try IncomingMigration(
            machine: machine, uri: uri,
            setStatus: { status in this.value().setIncoming(status) },
            lateBlockActivate: { this.value().capabilities.contains(.lateBlockActivate) })
        incoming = migration
        try migration.start()
        deferred = false
        incomingStatus = .setup
    }

    // MARK: query-migrate

    public var info: MigrationInfo {
        var info = MigrationInfo()
        // A VM that came in and went out again reports its outgoing migration.
        if incomingStatus != .none && outgoingStatus == .none {
            // QEMU shows no status until the source connects, and the address while it can come.
            if incomingStatus != .setup { info.status = incomingStatus }
            if [.setup, .active, .postcopyActive].contains(incomingStatus), let incoming {
                // migrate_add_address prepends each listener: QEMU lists the last one first.
                info.listeningOn = incoming.listeningOn.reversed()
            }
            return info
        }
        guard outgoingStatus != .none else { return info }
        info.status = outgoingStatus
        switch outgoingStatus {
        case .active, .preSwitchover, .device, .cancelling, .postcopyActive:
            var stats = outgoing?.shared.withLock { $0.stats } ?? MigrationStats()
            stats.totalTime = outgoing?.elapsed ?? 0
            info.stats = stats
            info.showsExpectedDowntime = true
        case .completed:
            info.stats = outgoing?.shared.withLock { $0.stats }
            info.showsDowntime = true
        case .failed:
            info.errorDescription = outgoingError
        case .none, .setup, .cancelled:
            break
        }
        return info
    }
}
