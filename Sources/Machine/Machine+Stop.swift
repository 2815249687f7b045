import Block
import Devices

/// Stopping the VM as QEMU 7.2's do_vm_stop does, for `stop`, an I/O error's stop and (its first
/// half) a migration's switch-over: the vCPU leaves the guest, the run state changes, the devices
/// hear it (vm_state_notify: virtio-blk takes no more requests from its ring), STOP goes out; then
/// bdrv_drain_all (the requests in flight complete, jobs pause and resume) and bdrv_flush_all.
/// The drain does not block the loop: completions arrive on it, and `settled` runs at the end
/// (QMP `stop` answers then, as qmp_stop returns after do_vm_stop). All on the loop thread.
extension Machine {
    /// QMP `stop` (qmp_stop): during an incoming migration only autostart is cleared; otherwise a
    /// running guest stops (STOP) and, running or not, the block layer is settled before `settled`.
    public func stop(settled: @escaping () -> Void = {}) {
        if runState == .inmigrate {
            autostart = false
            return settled()
        }
        stopRunningVm(to: .paused)
        settleBlockLayer(then: settled)
    }

    /// do_vm_stop's first half: only a running VM changes (returns whether it did).
    @discardableResult
    func stopRunningVm(to state: RunState) -> Bool {
        guard runState == .running else { return false }
        vcpuControl?.pause()
        try? changeRunState(to: state)  // running → paused / io-error is always in the table
        notifyVmState(running: false)
        onEvent?(.stop)
        return true
    }

    /// vm_state_notify for the devices. Running again: virtio-blk re-submits the requests an error
    /// stopped, then every queue is looked at as if the driver had kicked (QEMU sets each host
    /// notifier when it starts the ioeventfds again), restored queues included.
    func notifyVmState(running: Bool) {
        for device in virtioBlkDevices { device.vmStateChanged(running: running) }
        if running { kickRestoredQueues() }
    }

    var virtioBlkDevices: [VirtioBlk] { transports.compactMap { $0.1.device as? VirtioBlk } }

    /// bdrv_drain_all then bdrv_flush_all, asynchronously: a drained section over every node
    /// (new requests from other users wait, the ones in flight complete, jobs holding a node pause
    /// for it), then every device's own requests (one held back by another drained section
    /// completes once that ends), then a flush of every writable top node (format drivers write
    /// back their metadata, files reach the disk). Flush errors are not reported: qmp_stop
    /// ignores vm_stop's result too.
    func settleBlockLayer(then done: @escaping () -> Void) {
        graph.drain(graph.nodes) { [self] end in
            end()
            whenDevicesIdle { [self] in flushTopNodes(then: done) }
        }
    }

    private func whenDevicesIdle(then done: @escaping () -> Void) {
        var waiting = virtioBlkDevices
        func next() {
            guard let device = waiting.popLast() else { return done() }
            device.whenIdle(next)
        }
        next()
    }

    private func flushTopNodes(then done: @escaping () -> Void) {
        let nodes = graph.rootNodes.filter(\.isWritable)
        var pending = nodes.count
        guard pending > 0 else { return done() }
        for node in nodes {
            node.flush { _ in
                pending -= 1
                if pending == 0 { done() }
            }
        }
    }
}
