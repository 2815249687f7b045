import Glibc

/// QEMU's op blockers (bdrv_op_block_all / bdrv_op_unblock / bdrv_op_is_blocked).
extension BlockNode {
    /// bdrv_op_is_blocked: fails with `Node 'X' is busy: <reason>` if a blocker refuses `operation`.
    public func checkNotBlocked(_ operation: BlockOperation) throws(BlockError) {
        guard let blocker = (backingBlockers + opBlockers).first(where: { $0.blocks(operation) }) else { return }
        throw BlockError("Node '\(deviceOrNodeName)' is busy: \(blocker.reason)", errno: EBUSY)
    }

    /// bdrv_backing_attach's blocker, derived from the edges: a node that is some overlay's backing.
    private var backingBlockers: [BlockOpBlocker] {
        parents.compactMap { edge in
            guard edge.role.contains(.cow), let overlay = edge.parent as? BlockNode else { return nil }
            return BlockOpBlocker(allowed: BlockOperation.allowedOnBacking,
                                  reason: "node is used as backing hd of '\(overlay.deviceOrNodeName)'",
                                  owner: ObjectIdentifier(overlay))
        }
    }

    func addBlocker(reason: String, allowing allowed: Set<BlockOperation>, owner: AnyObject) {
        opBlockers.append(BlockOpBlocker(allowed: allowed, reason: reason, owner: ObjectIdentifier(owner)))
    }

    func removeBlockers(ownedBy owner: AnyObject) {
        opBlockers.removeAll { $0.owner == ObjectIdentifier(owner) }
    }

    /// bdrv_get_device_or_node_name: the name of a named BlockBackend on the node, else the node name.
    public var deviceOrNodeName: String {
        for edge in parents {
            if let backend = edge.parent as? BlockBackend, let name = backend.name, !name.isEmpty { return name }
        }
        return nodeName
    }
}
