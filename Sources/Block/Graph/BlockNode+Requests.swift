/// In-flight accounting and dirty tracking for the requests that reach a node through its edges.
extension BlockNode {
    func requestStarted() { requestsInFlight += 1 }

    /// bdrv_dec_in_flight: when the last request ends, whoever waits for the node to be idle runs.
    func requestFinished() {
        requestsInFlight -= 1
        guard requestsInFlight == 0, !idleWaiters.isEmpty else { return }
        let waiters = idleWaiters
        idleWaiters.removeAll()
        waiters.forEach { $0() }
    }

    /// Runs `action` as soon as nothing is in flight on the node (now, if nothing is).
    func whenIdle(_ action: @escaping () -> Void) {
        if requestsInFlight == 0 { return action() }
        idleWaiters.append(action)
    }

    public var isQuiesced: Bool { quiesceCount > 0 }

    /// bdrv_set_dirty: every enabled bitmap records the range as changed.
    func markDirty(offset: Int64, length: Int64) {
        for bitmap in dirtyBitmaps where bitmap.isRecording { bitmap.set(offset: offset, length: length) }
    }
}

extension BlockNode {
    /// bdrv_flush on the node itself (not through a parent's edge), counted like any request.
    public func flush(completion: @escaping IoCompletion) {
        requestStarted()
        driver.flush { [self] result in
            requestFinished()
            completion(result)
        }
    }
}
