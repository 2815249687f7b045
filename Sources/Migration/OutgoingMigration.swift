import Block
import Glibc
import KVM
import Machine
import Synchronization

/// One outgoing migration (QEMU's migration_thread): a sender thread that connects, sends every
/// RAM page once, then the pages dirtied meanwhile (KVM's log ∪ the VMM's writes) until the rest
/// fits `downtime-limit` at the measured bandwidth, then — with the VM stopped, block I/O drained
/// and the images inactivated on the loop — the rest, the device state and the end, and waits
/// for the destination's verdict. Status changes and run-state work happen on the loop.
final class OutgoingMigration: @unchecked Sendable {  // lets are immutable and Sendable; the rest is `shared` (a Mutex)
    let machine: LoopBound<Machine>
    /// RAM and the dirty log, which the sender thread reads directly.
    let ram: GuestRam
    /// What the destination must match, taken on the loop when the migration starts.
    let description: MachineDescription
    let uri: MigrationUri
    let pauseBeforeSwitchover: Bool
    /// The `dirty-bitmaps` capability: named bitmaps travel with the VM.
    let migratesBitmaps: Bool
    let shared: Mutex<OutgoingShared>
    /// Called on the loop: a new status (the controller emits the event).
    private let setStatus: @Sendable (MigrationStatus) -> Void
    private let emitPass: @Sendable (Int) -> Void
    private let finished: @Sendable (Result<Void, MigrationFailure>) -> Void
    private let startTime = MonotonicClock.milliseconds
    private let continueSignal: UnsafeMutablePointer<sem_t>

    init(machine: Machine, uri: MigrationUri, parameters: MigrationParameters, pauseBeforeSwitchover: Bool,
         migratesBitmaps: Bool,
         setStatus: @escaping @Sendable (MigrationStatus) -> Void, emitPass: @escaping @Sendable (Int) -> Void,
         finished: @escaping @Sendable (Result<Void, MigrationFailure>) -> Void) {
        self.machine = machine.loopBound
        ram = machine.ram
        description = MachineDescription.of(machine)
        self.uri = uri
        self.pauseBeforeSwitchover = pauseBeforeSwitchover
        self.migratesBitmaps = migratesBitmaps
        shared = Mutex(OutgoingShared(maxBandwidth: parameters.maxBandwidth, downtimeLimit: parameters.downtimeLimit))
        self.setStatus = setStatus
        self.emitPass = emitPass
        self.finished = finished
        continueSignal = .allocate(capacity: 1)
        sem_init(continueSignal, 0, 0)
    }

    deinit {
        sem_destroy(continueSignal)
        continueSignal.deallocate()
    }

    var elapsed: Int64 { MonotonicClock.milliseconds - startTime }

    // MARK: from the loop

    func cancel() {
        let channel = shared.withLock { state -> MigrationChannel? in
            state.cancelRequested = true
            return state.channel
        }
        channel?.abort()
        sem_post(continueSignal)
    }

    func continueSwitchover() {
        shared.withLock { $0.continueRequested = true }
        sem_post(continueSignal)
    }

    /// migrate-start-postcopy: taken into account at the switch-over.
    func requestPostcopy() {
        shared.withLock { $0.postcopyRequested = true }
    }

    var postcopyRequested: Bool { shared.withLock { $0.postcopyRequested } }

    func setParameters(_ parameters: MigrationParameters) {
        shared.withLock {
            $0.maxBandwidth = parameters.maxBandwidth
            $0.downtimeLimit = parameters.downtimeLimit
        }
    }

    // MARK: the sender thread

    func start() throws(MigrationError) {
        do {
            try NativeThread.start(name: "svmm-migrate") { [self] in self.run() }
        } catch {
            throw MigrationError(error)
        }
    }

    private func run() {
        let session = SenderSession(migration: self)
        let result: Result<Void, MigrationFailure>
        do throws(MigrationFailure) {
            try session.run()
            result = .success(())
        } catch {
            result = .failure(error)
        }
        session.close()
        shared.withLock { $0.channel = nil }
        let finished = self.finished
        let undo = session.undo
        _ = LoopBridge<Bool>.call(on: machine) { machine in
            // QEMU's order: a failure is reported before the guest resumes, a cancel after.
            if case .failure(.failed) = result {
                finished(result)
                undo.apply(after: result, on: machine)
            } else {
                undo.apply(after: result, on: machine)
                finished(result)
            }
            return true
        }
    }

    // MARK: helpers for the session

    func onLoop(_ status: MigrationStatus) {
        let setStatus = self.setStatus
        _ = LoopBridge<Bool>.call(on: machine) { _ in setStatus(status); return true }
    }

    func pass(_ number: Int) {
        let emitPass = self.emitPass
        machine.perform { _ in emitPass(number) }
    }

    var isCancelled: Bool { shared.withLock { $0.cancelRequested } }

    /// Blocks the sender until migrate-continue or migrate_cancel.
    func waitForContinue() throws(MigrationFailure) {
        while true {
            let (cancelled, continued) = shared.withLock { ($0.cancelRequested, $0.continueRequested) }
            if cancelled { throw .cancelled }
            if continued { return }
            while sem_wait(continueSignal) != 0 {}
        }
    }

    func publish(_ update: (inout MigrationStats) -> Void) {
        shared.withLock { update(&$0.stats) }
    }
}
