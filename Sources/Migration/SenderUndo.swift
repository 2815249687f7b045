import Machine

/// What an outgoing migration changed on the loop, so that its end can keep or undo it
/// (migration_iteration_finish). The sender thread records it; the loop applies it once the
/// thread is done, so it is plain Sendable data.
struct SenderUndo: Sendable {
    let ram: GuestRam
    var trackingStarted = false
    /// nil until the VM was stopped for switch-over; then whether it had been running.
    var stoppedVM: Bool?
    var inactivated = false
    /// The `dirty-bitmaps` capability's bitmaps (busy while this migration runs).
    var bitmaps: LoopBound<OutgoingBitmaps>?
    /// `postcopy-run` went out: the destination may be running the VM, so a failure from now
    /// on must not resume it here.
    var postcopyRunSent = false

    init(ram: GuestRam) { self.ram = ram }

    /// On the loop, after the sender thread: on success the source stays stopped (postmigrate);
    /// on failure or cancel the images come back and a guest that ran runs again.
    func apply(after result: Result<Void, MigrationFailure>, on machine: Machine) {
        if trackingStarted { ram.stopDirtyTracking() }
        bitmaps?.value.release()
        switch result {
        case .success:
            machine.finishOutgoingMigration()
        case .failure where postcopyRunSent:
            // The destination may run the VM already (QEMU's postcopy cannot fall back either).
            machine.finishOutgoingMigration()
        case .failure:
            if inactivated {
                do throws(MachineError) { try machine.reactivateImages() } catch { Console.report("migration: re-activating the images failed: \(error)") }
            }
            if let wasRunning = stoppedVM { machine.resumeAfterFailedMigration(wasRunning: wasRunning) }
        }
    }
}
