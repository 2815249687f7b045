/// The requests in flight on one file, by byte range, and the ones held back because they
/// overlap a serialising request (QEMU's tracked requests: tracked_request_begin/end,
/// bdrv_make_request_serialising and bdrv_wait_serialising_requests in block/io.c).
///
/// A read-modify-write of a partial O_DIRECT block is serialising over the whole padded block:
/// between its read and its write, no other write may land in that block (the RMW would put
/// back stale bytes), and it must not read before an earlier overlapping write has landed.
/// Two non-serialising requests never wait for each other, as in QEMU.
final class TrackedRequests {
    private struct Request {
        let range: Range<Int64>
        let serialising: Bool

        func conflicts(with other: Request) -> Bool {
            (serialising || other.serialising) && range.overlaps(other.range)
        }
    }

    private var active: [Int: Request] = [:]
    /// Held-back requests in the order they arrived; a later one never overtakes an earlier one
    /// it conflicts with, so overlapping writes keep their order.
    private var waiting: [(id: Int, request: Request, start: (Int) -> Void)] = []
    /// Serialising requests active or waiting; while zero nothing can wait (the fast path).
    private var serialisingCount = 0
    private var nextID = 0

    var isIdle: Bool { active.isEmpty && waiting.isEmpty }

    /// Runs `start` with the request's id once nothing it conflicts with is in flight or ahead of
    /// it; the request's completion must then call `end(id)`.
    func begin(_ range: Range<Int64>, serialising: Bool, start: @escaping (Int) -> Void) {
        let id = nextID
        nextID += 1
        let request = Request(range: range, serialising: serialising)
        if serialising { serialisingCount += 1 }
        let blocked = serialisingCount > 0
            && (active.values.contains { request.conflicts(with: $0) } || waiting.contains { request.conflicts(with: $0.request) })
        if blocked {
            waiting.append((id, request, start))
            return
        }
        active[id] = request
        start(id)
    }

    /// The request finished: starts the held-back ones it (and nothing else) was blocking.
    func end(_ id: Int) {
        guard let request = active.removeValue(forKey: id) else { return }
        if request.serialising { serialisingCount -= 1 }
        guard !waiting.isEmpty else { return }
        var stillWaiting: [(id: Int, request: Request, start: (Int) -> Void)] = []
        var ready: [(id: Int, start: (Int) -> Void)] = []
        for entry in waiting {
            let blocked = active.values.contains { entry.request.conflicts(with: $0) }
                || stillWaiting.contains { entry.request.conflicts(with: $0.request) }
            if blocked {
                stillWaiting.append(entry)
            } else {
                active[entry.id] = entry.request
                ready.append((entry.id, entry.start))
            }
        }
        waiting = stillWaiting
        // Started after the bookkeeping: a start may complete at once and call `end` again.
        for (readyID, start) in ready { start(readyID) }
    }
}
