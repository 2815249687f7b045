import Glibc

extension BlockGraph {
    /// Looks a node up as QMP's `node`/`device` arguments do.
    public func lookup(_ name: String) throws(BlockError) -> BlockNode {
        if let node = node(named: name) { return node }
        if let backend = allBackends.first(where: { $0.name == name }), let node = backend.node { return node }
        throw BlockError("Cannot find device='\(name)' nor node-name='\(name)'", errno: ENOENT)
    }

    /// `blockdev-snapshot {node, overlay}` with the relaxed check of QEMU 5.0+ (external_snapshot_prepare):
    /// the overlay may be in use, only not by anyone who reads it consistently; it must not be a
    /// filter or already have a backing, and must support one. Then `node` becomes the overlay's
    /// backing and every parent of `node` moves to the overlay (bdrv_append), atomically.
    public func snapshot(node nodeName: String, overlay overlayName: String) throws(BlockError) {
        let base = try lookup(nodeName)
        let overlay = try lookup(overlayName)
        if overlay.cumulativePermissions.perm.contains(.consistentRead) {
            throw BlockError("The overlay is already in use", errno: EBUSY)
        }
        if let raw = overlay.driver as? RawDriver, raw.isFilter {
            throw BlockError("Filters cannot be used as overlays", errno: EINVAL)
        }
        if overlay.backing != nil {
            throw BlockError("The overlay already has a backing image", errno: EINVAL)
        }
        guard let format = overlay.driver as? BackingCapable else {
            throw BlockError("The overlay does not support backing images", errno: ENOTSUP)
        }
        if !base.readOnly {
            try flushSync(base)
        }
        try append(overlay, on: base)
        format.setBacking(base.driver)
        // external_snapshot_commit: the old top is only read from now on.
        reopenReadOnly(base)
    }

    /// bdrv_reopen_set_read_only(…, true): the node and the protocol/format children under it stop
    /// writing; failures are ignored, as QEMU passes no error pointer there.
    func reopenReadOnly(_ node: BlockNode) {
        var changed: [BlockNode] = []
        func mark(_ current: BlockNode) {
            guard !current.readOnly else { return }
            current.readOnly = true
            changed.append(current)
            current.file.map(mark)
        }
        mark(node)
        do {
            try refresh([node])
        } catch {
            for current in changed { current.readOnly = false }
        }
    }

    /// bdrv_append: `overlay` gets `base` as backing and takes over all of `base`'s parents.
    func append(_ overlay: BlockNode, on base: BlockNode) throws(BlockError) {
        if overlay === base || Self.isDescendant(overlay, of: base) {
            throw BlockError("Making '\(base.nodeName)' a backing child of '\(overlay.nodeName)' would create a cycle", errno: EINVAL)
        }
        let moving = base.parents
        let (perm, shared) = overlay.cumulativePermissions
        let (childPerm, childShared) = overlay.childPermissions(role: .cow, perm: perm, shared: shared)
        let backingEdge = BdrvChild(name: "backing", role: .cow, parent: overlay, node: base, perm: childPerm, sharedPerm: childShared)
        try transaction(refreshing: [overlay, base]) { (t: inout PermissionTransaction) throws(BlockError) in
            for edge in moving.reversed() { t.retarget(edge, to: overlay) }
            t.link(backingEdge, into: overlay)
        }
    }

    /// Flushes a node before it becomes a backing file (synchronously, on the loop thread).
    private func flushSync(_ node: BlockNode) throws(BlockError) {
        var outcome: Result<Int, BlockError>?
        node.driver.flush { outcome = $0 }
        // Drivers svmm has complete a flush on this thread before returning, or via the loop;
        // a pending one has not failed yet, and the snapshot does not depend on its data.
        if case .failure(let error)? = outcome { throw BlockError("Input/output error (\(error))", errno: EIO) }
    }
}
