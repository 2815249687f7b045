/// A request that entered a node through an edge, from its driver call to its completion: what
/// the edge still has to do when the driver reports (the tail of QEMU's bdrv_co_pwritev_part and
/// friends: bdrv_set_dirty, then bdrv_dec_in_flight).
///
/// The node keeps finished ones for its next requests, and the driver gets a closure that
/// captures only this object, which Swift passes without allocating a context: once a node has
/// served its queue depth, a request through an edge allocates nothing. A free one holds no
/// references, so the node's free list makes no cycle.
final class EdgeRequest {
    private var node: BlockNode?
    private var completion: IoCompletion?
    /// The bytes a write, discard or write-zeroes changes, for the node's dirty bitmaps.
    private var dirtied: (offset: Int64, length: Int64)?
    /// A write or write-zeroes (not a discard): raises the node's highest written offset.
    private var writesData = false

    /// Takes the request's state and returns the completion to give the node's driver.
    func start(on node: BlockNode, dirtying dirtied: (offset: Int64, length: Int64)?, writesData: Bool,
               completion: @escaping IoCompletion) -> IoCompletion {
        self.node = node
        self.completion = completion
        self.dirtied = dirtied
        self.writesData = writesData
        return { [self] result in finish(result) }
    }

    private func finish(_ result: Result<Int, BlockError>) {
        guard let node, let completion else { preconditionFailure("a block driver completed a request twice") }
        let dirtied = self.dirtied
        self.node = nil
        self.completion = nil
        self.dirtied = nil
        // Recycled before the caller hears of it: its completion may start the next request.
        node.requestFinished(self, dirtied: dirtied, wroteData: writesData)
        completion(result)
    }
}
