/// Where the block layer raises blkdebug events (QEMU's BLKDBG_EVENT(child, event) →
/// bdrv_debug_event): on the node an edge points at, which acts only if it is a blkdebug node.
extension BdrvChild {
    public func raise(_ event: BlkdebugEvent) {
        (node.driver as? BlkdebugDriver)?.handle(event)
    }

    /// `flush_to_disk` for a flush of this edge's parent, if the parent node was written since
    /// its last good flush (for drivers whose flush raises it after writing back metadata).
    public func raiseFlushToDiskForParent() {
        guard let parent = parent as? BlockNode, parent.writeGeneration != parent.flushedGeneration else { return }
        raise(.flushToDisk)
    }
}

extension BlockNode {
    /// bdrv_primary_child: the child the node's data comes from (a format's file, a filter's child).
    var primaryChild: BdrvChild? { children.first { $0.role.contains(.primary) } }

    /// bdrv_co_flush's events: `flush_to_os` on the primary child, then `flush_to_disk` when the
    /// node was written since its last good flush (qcow2 raises that one itself after its
    /// write-back); the flush is counted in flight, and a good one records what it covered.
    func flushRaisingDebugEvents(completion: @escaping IoCompletion) {
        let generation = writeGeneration
        let primary = primaryChild
        primary?.raise(.flushToOS)
        if !driver.raisesFlushToDisk, generation != flushedGeneration { primary?.raise(.flushToDisk) }
        let counted = requestStarted(completion: completion)
        driver.flush { [self] result in
            if case .success = result { flushedGeneration = max(flushedGeneration, generation) }
            counted(result)
        }
    }
}
