import Block
import Devices

/// The machine's side of rerror/werror: BLOCK_IO_ERROR to the monitors, the stop in run state
/// `io-error` (qemu_system_vmstop_request(RUN_STATE_IO_ERROR)), and the retry on `cont`.
extension Machine {
    /// blkconf_apply_backend_options + blk_iostatus_enable, for a virtio-blk device's backend.
    func applyErrorPolicy(_ device: MachineConfig.VirtioBlkConfig, to backend: BlockBackend) {
        if device.readErrorPolicy != .auto { backend.onReadError = device.readErrorPolicy }
        if device.writeErrorPolicy != .auto { backend.onWriteError = device.writeErrorPolicy }
        backend.ioStatusEnabled = true
        backend.onIoError = { [unowned self] report in
            onEvent?(.blockIoError(report))
            if report.action == .stop { stopForIoError() }
        }
    }

    /// do_vm_stop(RUN_STATE_IO_ERROR): a running VM pauses and says STOP (after BLOCK_IO_ERROR);
    /// one that is not running stays in its state (the failed request still waits for `cont`).
    /// The drain and flush run after the failing request's completion, as QEMU's vmstop request
    /// is served from the main loop.
    func stopForIoError() {
        guard stopRunningVm(to: .ioError) else { return }
        loop.runSoon { [self] in settleBlockLayer {} }
    }

    /// qmp_cont's blk_iostatus_reset, which walks blk_next: the named (`-drive`) backends only, so
    /// a device on a `-blockdev` node keeps showing `failed` after `cont`, as in QEMU 7.2.
    func resetIoStatus() {
        for backend in namedBackends.values { backend.resetIoStatus() }
    }
}
