/// The requests in flight on one file, by byte range, and the ones held back because they
/// overlap a serialising request (QEMU's tracked requests: tracked_request_begin/end,
/// bdrv_make_request_serialising and bdrv_wait_serialising_requests in block/io.c).
///
/// A read-modify-write of a partial O_DIRECT block is serialising over the whole padded block:
/// between its read and its write, no other write may land in that block (the RMW would put
/// back stale bytes), and it must not read before an earlier overlapping write has landed.
/// Two non-serialising requests never wait for each other, as in QEMU.
final class TrackedRequests {
    /// In no particular order (a request leaves by swapping the last one into its place).
    private var active: [TrackedRequest] = []
    /// Held-back requests in the order they arrived; a later one never overtakes an earlier one
    /// it conflicts with, so overlapping writes keep their order.
    private var waiting: [(request: TrackedRequest, start: (@escaping IoCompletion) -> Void)] = []
    /// Finished requests, for the next ones.
    private var free: [TrackedRequest] = []
    /// Serialising requests active or waiting; while zero nothing can wait (the fast path).
    private var serialisingCount = 0

    var isIdle: Bool { active.isEmpty && waiting.isEmpty }

    /// The fast path: while no serialising request is active or waiting, a non-serialising one
    /// starts at once. Returns the completion for its I/O, or nil when it must go through `begin`.
    func beginWithoutWaiting(_ range: Range<Int64>, completion: @escaping IoCompletion) -> IoCompletion? {
        guard serialisingCount == 0 else { return nil }
        let request = make(range, serialising: false, completion)
        activate(request)
        return request.ioCompletion
    }

    /// Runs `start` with the completion for the request's I/O once nothing it conflicts with is
    /// in flight or ahead of it (now, if nothing is).
    func begin(_ range: Range<Int64>, serialising: Bool, completion: @escaping IoCompletion,
               start: @escaping (@escaping IoCompletion) -> Void) {
        let request = make(range, serialising: serialising, completion)
        if serialising { serialisingCount += 1 }
        let blocked = serialisingCount > 0
            && (active.contains { request.conflicts(with: $0) } || waiting.contains { request.conflicts(with: $0.request) })
        if blocked {
            waiting.append((request, start))
            return
        }
        activate(request)
        start(request.ioCompletion)
    }

    /// The request finished: starts the held-back ones it (and nothing else) was blocking.
    func end(_ request: TrackedRequest) {
        deactivate(request)
        if request.serialising { serialisingCount -= 1 }
        free.append(request)
        guard !waiting.isEmpty else { return }
        var stillWaiting: [(request: TrackedRequest, start: (@escaping IoCompletion) -> Void)] = []
        var ready: [(request: TrackedRequest, start: (@escaping IoCompletion) -> Void)] = []
        for entry in waiting {
            let blocked = active.contains { entry.request.conflicts(with: $0) }
                || stillWaiting.contains { entry.request.conflicts(with: $0.request) }
            if blocked {
                stillWaiting.append(entry)
            } else {
                activate(entry.request)
                ready.append(entry)
            }
        }
        waiting = stillWaiting
        // Started after the bookkeeping: a start may complete at once and call `end` again.
        for entry in ready { entry.start(entry.request.ioCompletion) }
    }

    private func make(_ range: Range<Int64>, serialising: Bool, _ completion: @escaping IoCompletion) -> TrackedRequest {
        let request = free.popLast() ?? TrackedRequest()
        request.prepare(owner: self, range: range, serialising: serialising, completion: completion)
        return request
    }

    private func activate(_ request: TrackedRequest) {
        request.activeIndex = active.count
        active.append(request)
    }

    private func deactivate(_ request: TrackedRequest) {
        let index = request.activeIndex
        precondition(index >= 0 && index < active.count && active[index] === request, "tracked request not active")
        let last = active.removeLast()
        if last !== request {
            active[index] = last
            last.activeIndex = index
        }
        request.activeIndex = -1
    }
}
