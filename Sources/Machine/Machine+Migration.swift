import Block

// Run-state changes and image hand-over for live migration (QEMU's migration.c around
// migration_completion, migration_iteration_finish and process_incoming_migration_bh).
// All on the loop thread.
extension Machine {
    /// migration_completion's vm_stop_force_state(FINISH_MIGRATE): the vCPU leaves the guest
    /// (STOP if it was running). Returns whether the guest was running. The parked vCPU thread
    /// stays awake for the state save that follows (`VcpuControl.keepAwake`).
    public func stopForMigration() -> Bool {
        let wasRunning = runState == .running
        vcpuControl?.keepAwake(forNanoseconds: Self.switchoverPollNanoseconds)
        if wasRunning {
            vcpuControl?.pause()
            onEvent?(.stop)
        }
        try? changeRunState(to: .finishMigrate)  // every state a migration starts from may go there
        notifyVmState(running: false)  // virtio-blk takes no more requests: the drain that follows ends
        return wasRunning
    }

    /// How long a vCPU thread polls instead of sleeping around a switch-over: its requests come
    /// within a few hundred µs of each other (the source's migration thread polls as long for the
    /// stop-and-save).
    public static let switchoverPollNanoseconds: Int64 = 3_000_000

    /// The incoming stream's device state has begun, so the source's VM is stopped and the load
    /// follows within µs: the vCPU thread and the loop wake now and poll for it instead of being
    /// woken for it (two wake-ups of an idle CPU, tens of µs each on these machines).
    public func prepareForIncomingSwitchover() {
        vcpuControl?.keepAwake(forNanoseconds: Self.switchoverPollNanoseconds)
        loop.awaitNextJob(pollingForNanoseconds: Self.switchoverPollNanoseconds)
    }

    /// The source after a completed migration: paused for good (`cont` re-activates the images).
    public func finishOutgoingMigration() {
        try? changeRunState(to: .postmigrate)
    }

    /// bdrv_activate_all after a failed or cancelled migration, with every device taking its
    /// permissions back (blk_root_activate).
    public func reactivateImages() throws(MachineError) {
        do {
            try graph.activateAll()
            for backend in deviceBackends + namedBackends.values { try backend.resumeAfterMigration() }
        } catch {
            throw MachineError(error.description)
        }
    }

    /// migration_iteration_finish on failure or cancel: a guest that ran runs again (RESUME);
    /// one that was paused and reached finish-migrate goes to postmigrate, as QEMU 7.2 does.
    public func resumeAfterFailedMigration(wasRunning: Bool) {
        if wasRunning {
            guard (try? changeRunState(to: .running)) != nil else { return }
            vcpuControl?.resume()
            onEvent?(.resume)
            notifyVmState(running: true)
        } else if runState == .finishMigrate {
            try? changeRunState(to: .postmigrate)
        }
    }

    /// process_incoming_migration_bh, after the stream and the device state are in. Images are
    /// activated unless `late-block-activate` and the VM does not start now; the VM then runs
    /// (autostart, the source was running), or takes the source's run state, or stays paused.
    /// Following DECISIONS.md §2, devices apply the permissions they recorded before the VM
    /// runs; a conflict leaves it paused (reported through `report`).
    public func finishIncomingMigration(sourceRunState: String, lateBlockActivate: Bool, report: (String) -> Void) {
        let sourceRan = sourceRunState.isEmpty || sourceRunState == RunState.running.rawValue
        var start = autostart && sourceRan
        opener.opensInactive = false
        if !lateBlockActivate || start {
            do { try graph.activateAll() } catch {
                report(error.description)
                start = false
            }
        }
        if start {
            do {
                for backend in deviceBackends + namedBackends.values { try backend.resumeAfterMigration() }
                try changeRunState(to: .running)
                vcpuControl?.resume()
                onEvent?(.resume)
                notifyVmState(running: true)  // the source's failed requests go again, queues looked at
                return
            } catch {
                report(String(describing: error))
            }
        }
        let adopted = sourceRan ? RunState.paused : (RunState(rawValue: sourceRunState) ?? .paused)
        if (try? changeRunState(to: adopted)) == nil { try? changeRunState(to: .paused) }
    }
}
