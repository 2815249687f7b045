import Glibc

extension BlockGraph {
    /// Looks a node up as QMP's `node`/`device` arguments do.
    public func lookup(_ name: String) throws(BlockError) -> BlockNode {
        if let node = node(named: name) { return node }
        if let backend = allBackends.first(where: { $0.name == name }), let node = backend.node { return node }
        throw BlockError("Cannot find device='\(name)' nor node-name='\(name)'", errno: ENOENT)
    }

    /// `blockdev-snapshot {node, overlay}` as QEMU 5.0+'s external_snapshot_prepare/commit, with
    /// the relaxed check: the overlay may be in use, only not by anyone who reads it consistently;
    /// it must not be a filter or already have a backing, and must support one. Inside a drained
    /// section over both nodes, `node` is flushed, becomes the overlay's backing and every parent
    /// of `node` moves to the overlay (bdrv_append) in one checked step; requests held back during
    /// the drain then go to the overlay.
    public func snapshot(node nodeName: String, overlay overlayName: String,
                         completion: @escaping (Result<Void, BlockError>) -> Void) {
        // qmp_transaction starts with bdrv_drain_all: every job pauses and resumes.
        jobs.pauseAllBriefly()
        let base: BlockNode
        do { base = try lookup(nodeName) } catch { return completion(.failure(error)) }
        let overlay = try? lookup(overlayName)
        drain([base] + (overlay.map { [$0] } ?? [])) { [self] end in
            let finish = { (result: Result<Void, BlockError>) in
                end()
                completion(result)
            }
            do throws(BlockError) {
                try base.checkNotBlocked(.externalSnapshot)
            } catch {
                return finish(.failure(error))
            }
            let attach = { [self] in
                finish(Result { () throws(BlockError) in try attachSnapshot(overlayName, on: base) })
            }
            guard !base.readOnly else { return attach() }
            base.flush { result in
                guard case .success = result else { return finish(.failure(BlockError("An IO error has occurred", errno: EIO))) }
                attach()
            }
        }
    }

    /// The overlay's checks (in QEMU's order), bdrv_append, and external_snapshot_commit.
    private func attachSnapshot(_ overlayName: String, on base: BlockNode) throws(BlockError) {
        let overlay = try lookup(overlayName)
        if overlay.cumulativePermissions.perm.contains(.consistentRead) {
            throw BlockError("The overlay is already in use", errno: EBUSY)
        }
        if overlay.driver.isFilter {
            throw BlockError("Filters cannot be used as overlays", errno: EINVAL)
        }
        if overlay.backing != nil {
            throw BlockError("The overlay already has a backing image", errno: EINVAL)
        }
        guard let format = overlay.driver as? BackingCapable else {
            throw BlockError("The overlay does not support backing images", errno: ENOTSUP)
        }
        format.setBacking(try append(overlay, on: base))
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
    /// Returns the new backing edge.
    func append(_ overlay: BlockNode, on base: BlockNode) throws(BlockError) -> BdrvChild {
        if overlay === base || Self.isDescendant(overlay, of: base) {
            throw BlockError("Making '\(base.nodeName)' a backing child of '\(overlay.nodeName)' would create a cycle", errno: EINVAL)
        }
        let moving = Self.edgesToMove(from: base, to: overlay)
        let (perm, shared) = overlay.cumulativePermissions
        let (childPerm, childShared) = overlay.childPermissions(role: .cow, perm: perm, shared: shared)
        let backingEdge = BdrvChild(name: "backing", role: .cow, parent: overlay, node: base, perm: childPerm, sharedPerm: childShared)
        try transaction(refreshing: [overlay, base]) { (t: inout PermissionTransaction) throws(BlockError) in
            for edge in moving.reversed() { t.retarget(edge, to: overlay) }
            t.link(backingEdge, into: overlay)
        }
        return backingEdge
    }
}
