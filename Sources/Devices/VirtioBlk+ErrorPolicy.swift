import Block

/// rerror/werror for virtio-blk (QEMU's virtio_blk_handle_rw_error and the dma-restart on resume):
/// a request the block layer failed is reported to the guest (VIRTIO_BLK_S_IOERR), completed as
/// if it had worked (`ignore`), or kept for `cont` while the VM stops (`stop`, `enospc` on ENOSPC).
extension VirtioBlk {
    func handleError(_ pending: VirtioBlkPendingRequest, _ error: BlockError) {
        let isRead = pending.isRead
        let action = backend.errorAction(isRead: isRead, errno: error.errno)
        switch action {
        case .stop:
            // No longer in flight (drains and migration must not wait for it); kept in order. Its
            // accounting is neither done nor failed: the retry accounts afresh (QEMU's too).
            inFlight -= 1
            failedRequests.append(pending)
        case .report:
            if let cookie = pending.accounting { backend.stats.failed(cookie) }
            complete(pending, .ioError, written: 0)
        case .ignore:
            if let cookie = pending.accounting { backend.stats.done(cookie) }
            complete(pending, .ok, written: pending.bytesIn)
        }
        backend.reportError(action, isRead: isRead, errno: error.errno)
        // After BLOCK_IO_ERROR and the stop it may cause: a drain waiting for this one ends now.
        if inFlight == 0 && !idleWaiters.isEmpty { runIdleWaiters() }
    }

    /// Requests stopped on an error and not yet retried.
    public var requestsAwaitingRetry: Int { failedRequests.count }

    /// virtio_blk_dma_restart_cb → virtio_blk_process_queued_requests: once the VM runs again,
    /// the failed requests go to the block layer again, in the order they failed (a request
    /// that fails again is handled by the policy again).
    public func retryFailedRequests() {
        guard !failedRequests.isEmpty else { return }
        let requests = failedRequests
        failedRequests.removeAll()
        backend.plug()
        defer { backend.unplug() }
        for pending in requests {
            inFlight += 1
            guard let dataOut = pending.dataOut, let dataIn = pending.dataIn else {
                complete(pending, .ioError, written: 0)
                continue
            }
            dispatch(kind: pending.kind, sector: pending.sector, dataOut: dataOut, dataIn: dataIn, pending: pending)
        }
    }

    /// virtio_blk_reset drops the queued requests: the driver starts over.
    func dropFailedRequests() {
        for pending in failedRequests { pending.finish() }
        failedRequests.removeAll()
    }
}
