import Glibc

/// Requests through an edge (QEMU's bdrv_co_preadv/pwritev(child, …) in block/io.c): the edge
/// checks that its parent holds what the request needs, counts the request in flight on the node
/// it points at *now*, runs the node's driver, marks the node's dirty bitmaps after anything that
/// changes data, and wakes a waiting drain when the node has nothing left in flight. Because
/// every request looks up `node` when it starts, a graph change needs no I/O patching.
extension BdrvChild {
    /// The size of the node this edge points at.
    public var length: Int64 { node.driver.length }

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        let node = self.node
        node.driver.read(at: offset, into: vector, completion: node.requestStarted(completion: completion))
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        let range = (offset: offset, length: Int64(vector.totalLength))
        guard let (node, completion) = writableNode(dirtying: range, writesData: true, completion) else { return }
        node.driver.write(at: offset, from: vector, completion: completion)
    }

    /// bdrv_co_pdiscard: without `discard=unmap` on the node the request ends here, done.
    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        guard node.unmapsDiscards else { return completion(.success(0)) }
        guard let (node, completion) = writableNode(dirtying: (offset, length), completion) else { return }
        node.driver.discard(at: offset, length: length, completion: completion)
    }

    /// bdrv_co_pwrite_zeroes: BDRV_REQ_MAY_UNMAP only where the node has `discard=unmap`.
    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        guard let (node, completion) = writableNode(dirtying: (offset, length), writesData: true, completion) else { return }
        node.driver.writeZeroes(at: offset, length: length, mayUnmap: mayUnmap && node.unmapsDiscards, completion: completion)
    }

    public func flush(completion: @escaping IoCompletion) {
        node.flushRaisingDebugEvents(completion: completion)
    }

    public func plug() { node.driver.plug() }
    public func unplug() { node.driver.unplug() }

    /// bdrv_co_write_req_prepare: only a parent that holds WRITE may change the node's data
    /// (QEMU asserts it; here the request fails). Counts the request when it may start and
    /// returns the node with the completion to give its driver.
    private func writableNode(dirtying range: (offset: Int64, length: Int64), writesData: Bool = false,
                              _ completion: @escaping IoCompletion)
        -> (BlockNode, IoCompletion)? {
        let node = self.node
        guard perm.contains(.write) else {
            let reason = node.isWritable ? "Permission 'write' not held on node '\(node.nodeName)' by \(userDescription)"
                                         : "Block node is read-only"
            completion(.failure(BlockError(reason, errno: EPERM)))
            return nil
        }
        return (node, node.requestStarted(dirtying: range, writesData: writesData, completion: completion))
    }
}
