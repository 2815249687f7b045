import Glibc

/// A guest device's error policy on its backend (QEMU's blk_get_error_action, blk_error_action,
/// the iostatus functions of block-backend.c). The policy values are BlockdevOnError's, shared
/// with the jobs' on-source-error/on-target-error (`JobErrorPolicy`).
extension BlockBackend {
    /// blk_get_error_action: `werror` for everything but reads, `rerror` for reads.
    public func errorAction(isRead: Bool, errno code: Int32) -> JobErrorAction {
        (isRead ? onReadError : onWriteError).action(for: code)
    }

    /// blk_error_action: a stop records the io-status first, then every action is reported
    /// (the machine stops the VM after the event, so STOP follows BLOCK_IO_ERROR).
    public func reportError(_ action: JobErrorAction, isRead: Bool, errno code: Int32) {
        if action == .stop, ioStatus == .ok { ioStatus = code == ENOSPC ? .nospace : .failed }
        let report = BlockIoErrorReport(device: name ?? "", nodeName: node?.nodeName, isRead: isRead, action: action,
                                        nospace: hasIoStatus ? code == ENOSPC : nil,
                                        reason: String(cString: strerror(code)))
        onIoError?(report)
    }

    /// blk_iostatus_is_enabled: a device enabled it and a policy can stop the VM; only then do
    /// query-block show `io-status` and BLOCK_IO_ERROR carry `nospace`.
    public var hasIoStatus: Bool {
        ioStatusEnabled && (onWriteError == .enospc || onWriteError == .stop || onReadError == .stop)
    }

    /// blk_iostatus_reset (qmp_cont does it for the monitor's named backends only).
    public func resetIoStatus() {
        ioStatus = .ok
    }
}
