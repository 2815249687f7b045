/// virtio-blk and the VM's run state (QEMU's virtio_vmstate_change and the ioeventfd it stops and
/// starts): while the VM is not running the device pops no request, so the ones in flight are the
/// last until it runs again; a drain waits for them (`whenIdle`).
extension VirtioBlk {
    /// vm_state_notify for this device. Stopping only stops the popping (requests in flight go on
    /// and complete). Running again re-submits the requests an error stopped, in order (virtio-blk's
    /// dma-restart bottom half, which QEMU runs before the kicks); the machine then looks at the
    /// ring through the transport as a kick would (virtio_device_start_ioeventfd sets every host
    /// notifier once), so a kick taken while stopped, or never seen by a migration source, is not lost.
    public func vmStateChanged(running: Bool) {
        vmRunning = running
        if running { retryFailedRequests() }
    }

    public var isVmRunning: Bool { vmRunning }

    /// Runs `action` once no request is in flight (now, if none is). Requests stopped by an error
    /// are not in flight: they wait for the VM to run again.
    public func whenIdle(_ action: @escaping () -> Void) {
        if inFlight == 0 { return action() }
        idleWaiters.append(action)
    }

    func runIdleWaiters() {
        let waiters = idleWaiters
        idleWaiters.removeAll()
        waiters.forEach { $0() }
    }
}
