import Glibc

/// Starting and ending a mirror in the graph (blockdev.c blockdev_mirror_common and block/mirror.c
/// mirror_start_job / mirror_exit_common), with QEMU 7.2's checks in its order and words.
extension BlockGraph {
    /// The job's reason on every node it holds (block_job_add_bdrv's blocker).
    static func mirrorBlockerReason() -> String { "block device is in use by block job: mirror" }

    /// Inserts `mirror_top` above `device`, attaches the job to it, the source and the target,
    /// and starts the copy. `loop` runs the job's timers and steps.
    @discardableResult
    public func startMirror(device: String, target targetName: String, options: MirrorOptions,
                            loop: FdWatcher) throws(BlockError) -> Job {
        let source = try lookup(device)
        guard source.parents.allSatisfy({ $0.parent is BlockBackend }) else { throw BlockError("Need a root block node", errno: EINVAL) }
        let target = try lookup(targetName)
        var options = options
        if options.granularity != 0 {
            guard options.granularity >= 512 && options.granularity <= 64 << 20 else {
                throw BlockError("Parameter 'granularity' expects a value in range [512B, 64MB]", errno: EINVAL)
            }
            guard options.granularity.nonzeroBitCount == 1 else {
                throw BlockError("Parameter 'granularity' expects a power of 2", errno: EINVAL)
            }
        }
        try source.checkNotBlocked(.mirrorSource)
        try target.checkNotBlocked(.mirrorTarget)
        if options.sync == .top && source.backing == nil { options.sync = .full }
        let replaced = try options.replaces.map { (name: String) throws(BlockError) -> BlockNode in try nodeToReplace(name, source: source, target: target) }
        guard source !== target else { throw BlockError("Can't mirror node into itself", errno: EINVAL) }
        guard options.bufSize >= 0 else { throw BlockError("Invalid parameter 'buf-size'", errno: EINVAL) }
        if let name = options.filterNodeName, !BlockdevOptions.isWellFormedID(name) {
            throw BlockError("Invalid node-name: '\(name)'", errno: EINVAL)
        }
        try jobs.checkNewID(options.jobID)
        let granularity = options.granularity != 0 ? options.granularity : Self.defaultGranularity(target)
        // ROUND_UP(buf_size, granularity), kept below INT64_MAX for any buf-size QMP can carry.
        let bufSize = options.bufSize == 0 ? 16 << 20 : (min(options.bufSize, Int64.max - granularity) + granularity - 1) / granularity * granularity
        let initialDirty = try MirrorAllocation.initialRanges(of: source, sync: options.sync)

        let topDriver = MirrorTopDriver()
        let top = BlockNode(nodeName: options.filterNodeName ?? makeAutoName(), isAutoNamed: options.filterNodeName == nil,
                            driverName: "mirror_top", driver: topDriver, readOnly: false, filename: source.filename)
        try add(top)
        do {
            try insertMirrorTop(top, topDriver, above: source)
        } catch {
            try? remove(top)
            throw error
        }
        let targetBackend = BlockBackend(graph: self, perm: .write, shared: .writeUnchanged)
        targetBackend.forceAllowInactivate = true
        targetBackend.disableRequestQueuing = true
        let bitmap = BdrvDirtyBitmap(name: "", granularity: granularity, length: source.driver.length, enabled: true)
        let job = MirrorJob(options: options, source: source, replaced: replaced ?? source, target: target, top: top, topDriver: topDriver,
                            targetBackend: targetBackend, bitmap: bitmap, bufSize: bufSize, graph: self, loop: loop)
        jobs.add(job)
        do {
            try attachMirrorJob(job, targetBackend: targetBackend)
        } catch {
            // job_early_fail: the job goes (created -> null) and the graph is as before.
            for edge in job.edges { try? detach(edge, from: nil) }
            targetBackend.removeNode()
            try? removeMirrorTop(top, movingParentsTo: source, from: nil)
            job.dismiss()
            throw error
        }
        topDriver.job = job
        source.dirtyBitmaps.insert(bitmap, at: 0)
        for range in initialDirty { bitmap.set(offset: range.offset, length: range.length) }
        for node in [top, source, target] {
            node.addBlocker(reason: Self.mirrorBlockerReason(), allowing: [], owner: job)
        }
        job.start()
        return job
    }

    /// block_job_create's speed, the job's edges and the target's BlockBackend (QEMU 6.2+:
    /// WRITE, sharing only WRITE_UNCHANGED; no CONSISTENT_READ, so blockdev-snapshot can give the
    /// target a backing while the job runs).
    private func attachMirrorJob(_ job: MirrorJob, targetBackend: BlockBackend) throws(BlockError) {
        guard job.options.speed >= 0 else { throw BlockError("Parameter 'speed' expects a non-negative value", errno: EINVAL) }
        let shared: BlockPermission = [.consistentRead, .writeUnchanged, .write]
        job.edges.append(try attachRoot(job.top, parent: job, name: "main node", role: [], perm: .consistentRead, shared: shared))
        job.edges.append(try attachRoot(job.source, parent: job, name: "source", role: [], perm: [], shared: shared))
        try targetBackend.insert(job.target)
        job.edges.append(try attachRoot(job.target, parent: job, name: "target", role: [], perm: [], shared: .all))
    }

    /// check_to_replace_node and the size check of blockdev_mirror_common: `replaces` names the
    /// source or a node the source filters, of the target's size.
    private func nodeToReplace(_ name: String, source: BlockNode, target: BlockNode) throws(BlockError) -> BlockNode {
        guard let node = self.node(named: name) else {
            throw BlockError("Failed to find node with node-name='\(name)'", errno: ENOENT)
        }
        var current: BlockNode? = source
        while let candidate = current, candidate !== node {
            current = candidate.driver.isFilter ? candidate.filterOrCowChild : nil
        }
        guard current != nil else {
            throw BlockError("Cannot replace '\(name)' by a node mirrored from '\(source.nodeName)', because it cannot be guaranteed "
                + "that doing so would not lead to an abrupt change of visible data", errno: EPERM)
        }
        guard node.driver.length == target.driver.length else {
            throw BlockError("cannot replace image with a mirror image of different size", errno: EINVAL)
        }
        return node
    }

    /// bdrv_append(mirror_top, source): the filter takes over the source's parents in one checked
    /// step and holds the source as its filtered `backing` child.
    private func insertMirrorTop(_ top: BlockNode, _ driver: MirrorTopDriver, above source: BlockNode) throws(BlockError) {
        let moving = Self.edgesToMove(from: source, to: top)
        let edge = BdrvChild(name: "backing", role: [.filtered, .primary], parent: top, node: source, perm: [], sharedPerm: .all)
        driver.source = edge
        try transaction(refreshing: [top, source]) { (t: inout PermissionTransaction) throws(BlockError) in
            for parent in moving.reversed() { t.retarget(parent, to: top) }
            t.link(edge, into: top)
        }
    }

    /// The end of mirror_exit_common: every parent of `top` (and, when completing, every other
    /// parent of `source`) moves to `replacement` in one checked step, and the filter goes.
    func removeMirrorTop(_ top: BlockNode, movingParentsTo replacement: BlockNode, from source: BlockNode?) throws(BlockError) {
        guard let backingEdge = top.children.first else { return try remove(top) }
        let filtered = backingEdge.node
        let topParents = top.parents
        let sourceParents = source.map { Self.edgesToMove(from: $0, to: replacement).filter { $0 !== backingEdge } } ?? []
        try transaction(refreshing: [replacement, filtered] + (source.map { [$0] } ?? [])) { (t: inout PermissionTransaction) throws(BlockError) in
            for edge in topParents.reversed() { t.retarget(edge, to: replacement) }
            for edge in sourceParents.reversed() { t.retarget(edge, to: replacement) }
            t.unlink(backingEdge, from: top)
        }
        try remove(top)
    }

    /// drive-mirror's absolute-paths mode on success: the target's backing becomes the source's
    /// backing (top) or the source (none), as the image header already names it.
    func setBackingOnCompletion(of target: BlockNode, to backing: BlockNode) {
        guard let format = target.driver as? BackingCapable, target.backing == nil else { return }
        if let edge = try? attachChild(backing, to: target, name: "backing", role: .cow) { format.setBacking(edge) }
    }
}
