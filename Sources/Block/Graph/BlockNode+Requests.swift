/// In-flight accounting and dirty tracking for the requests that reach a node through its edges.
extension BlockNode {
    /// bdrv_inc_in_flight: counts a request that starts now and returns the completion to give
    /// the driver, which marks the dirty bitmaps (a write: `dirtying` is its range), uncounts the
    /// request and then calls `completion`. Allocates nothing once the node has served as many
    /// requests at a time before (see `EdgeRequest`).
    func requestStarted(dirtying range: (offset: Int64, length: Int64)? = nil, writesData: Bool = false,
                        completion: @escaping IoCompletion) -> IoCompletion {
        requestsInFlight += 1
        let request = freeRequests.popLast() ?? EdgeRequest()
        return request.start(on: self, dirtying: range, writesData: writesData, completion: completion)
    }

    /// bdrv_co_write_req_finish (wr_highest_offset after a write, whatever its result, and
    /// bdrv_set_dirty), then bdrv_dec_in_flight: when the last request ends, whoever waits for
    /// the node to be idle runs.
    func requestFinished(_ request: EdgeRequest, dirtied range: (offset: Int64, length: Int64)?, wroteData: Bool) {
        if let range {
            if wroteData { writeHighestOffset = max(writeHighestOffset, range.offset &+ range.length) }
            markDirty(offset: range.offset, length: range.length)
        }
        freeRequests.append(request)
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
        writeGeneration &+= 1  // every finished write passes here (bdrv_co_write_req_finish)
        for bitmap in dirtyBitmaps where bitmap.isRecording { bitmap.set(offset: offset, length: length) }
    }
}

extension BlockNode {
    /// bdrv_flush on the node itself (not through a parent's edge), counted like any request.
    public func flush(completion: @escaping IoCompletion) {
        flushRaisingDebugEvents(completion: completion)
    }
}
