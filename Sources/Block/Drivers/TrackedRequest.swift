/// One request in flight on a file, by byte range (QEMU's BdrvTrackedRequest). `TrackedRequests`
/// reuses finished ones, and the I/O gets a closure capturing only this object (Swift passes
/// such a closure without allocating), so tracking a request allocates nothing. A free one
/// holds no references.
final class TrackedRequest {
    private(set) var range: Range<Int64> = 0..<0
    private(set) var serialising = false
    /// Where the request sits in its owner's list of active requests (while active).
    var activeIndex = -1
    private var owner: TrackedRequests?
    private var completion: IoCompletion?

    func prepare(owner: TrackedRequests, range: Range<Int64>, serialising: Bool, completion: @escaping IoCompletion) {
        self.owner = owner
        self.range = range
        self.serialising = serialising
        self.completion = completion
    }

    /// A serialising request and anything overlapping it take turns; two others never wait.
    func conflicts(with other: TrackedRequest) -> Bool {
        (serialising || other.serialising) && range.overlaps(other.range)
    }

    /// The completion to do the request's I/O with: it ends the tracked request, then reports.
    var ioCompletion: IoCompletion { { [self] result in finish(result) } }

    private func finish(_ result: Result<Int, BlockError>) {
        guard let owner, let completion else { preconditionFailure("a file request completed twice") }
        self.owner = nil
        self.completion = nil
        owner.end(self)
        completion(result)
    }
}
