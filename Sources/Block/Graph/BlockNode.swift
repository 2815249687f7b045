/// A node of the block graph (QEMU's BlockDriverState): a driver instance with its children,
/// the edges of its parents (newest first, as QEMU keeps them), and its open state.
public final class BlockNode: BlockParent {
    public let nodeName: String
    /// True when the user gave no node-name and the graph made one up (`#blockNNN`).
    public let isAutoNamed: Bool
    public let driverName: String
    public internal(set) var driver: BlockDriver
    public internal(set) var children: [BdrvChild] = []
    public internal(set) var parents: [BdrvChild] = []
    public internal(set) var readOnly: Bool
    /// BDRV_O_INACTIVE: another process owns the image (incoming or finished migration).
    public internal(set) var inactive = false
    /// Added by `-blockdev`/`blockdev-add` (only such nodes may be deleted by `blockdev-del`).
    public var isMonitorOwned = false
    /// `discard=unmap` (BDRV_O_UNMAP): discards reach the driver and write-zeroes may free space;
    /// otherwise (QEMU's default, `ignore`) a discard does nothing and succeeds.
    public internal(set) var unmapsDiscards = false
    /// `force-share=on`: every child edge shares everything.
    public let forceShare: Bool
    /// For queries: the file name of a protocol node, or of the image a format node opens.
    public var filename: String
    /// Requests that entered through an edge and have not completed (QEMU's bs->in_flight).
    public internal(set) var requestsInFlight = 0
    /// The end of the furthest write or write-zeroes that reached this node (bs->wr_highest_offset).
    public internal(set) var writeHighestOffset: Int64 = 0
    /// Called once when `requestsInFlight` next drops to zero (drains wait for it).
    var idleWaiters: [() -> Void] = []
    /// Finished requests kept for the next ones (see `EdgeRequest`).
    var freeRequests: [EdgeRequest] = []
    /// How many drained sections cover this node (QEMU's quiesce_counter); while it is above
    /// zero, BlockBackends on it hold new requests back.
    public internal(set) var quiesceCount = 0
    /// Enabled and disabled dirty bitmaps, in creation order (QEMU's bs->dirty_bitmaps).
    public internal(set) var dirtyBitmaps: [BdrvDirtyBitmap] = []
    /// QEMU's op blockers: operations refused on this node, each with the reason.
    public internal(set) var opBlockers: [BlockOpBlocker] = []
    /// QEMU's write_gen and flushed_gen: writes finished on the node, and how many of them the
    /// last good flush covered (bdrv_co_flush raises `flush_to_disk` only when they differ).
    var writeGeneration = 0
    var flushedGeneration = 0

    public init(nodeName: String, isAutoNamed: Bool = false, driverName: String, driver: BlockDriver,
                readOnly: Bool, forceShare: Bool = false, filename: String = "") {
        self.nodeName = nodeName
        self.isAutoNamed = isAutoNamed
        self.driverName = driverName
        self.driver = driver
        self.readOnly = readOnly
        self.forceShare = forceShare
        self.filename = filename
    }

    public var parentDescription: String { "node '\(nodeName)'" }

    /// Writable now and after any pending state change: not read-only, not inactive.
    public var isWritable: Bool { !readOnly && !inactive }

    public func child(named name: String) -> BdrvChild? { children.first { $0.name == name } }
    public var file: BlockNode? { child(named: "file")?.node }
    public var backing: BlockNode? { child(named: "backing")?.node }

    /// bdrv_filter_or_cow_bs: the node a filter passes requests to (its filtered child), or the
    /// backing file of a format node; nil for a protocol node.
    public var filterOrCowChild: BlockNode? {
        if let filtered = children.first(where: { $0.role.contains(.filtered) }) { return filtered.node }
        return children.first(where: { $0.role.contains(.cow) })?.node
    }

    /// bdrv_get_cumulative_perm: the union of what parents use, the intersection of what they share.
    public var cumulativePermissions: (perm: BlockPermission, shared: BlockPermission) {
        parents.reduce(([], .all)) { ($0.0.union($1.perm), $0.1.intersection($1.sharedPerm)) }
    }

    /// What this node takes on a child with `role`, given what its own parents need
    /// (QEMU's bdrv_default_perms, 7.2).
    func childPermissions(role: ChildRole, perm: BlockPermission, shared: BlockPermission) -> (BlockPermission, BlockPermission) {
        // bdrv_mirror_top_child_perm: a mirror that is ending forwards nothing to its source.
        if let mirrorTop = driver as? MirrorTopDriver, mirrorTop.stopped { return ([], .all) }
        if role.contains(.filtered) { return Self.filterPermissions(perm, shared) }
        if role.contains(.cow) { return cowPermissions(perm, shared) }
        var (childPerm, childShared) = storagePermissions(role: role, perm, shared)
        if driverName == "raw" {
            // raw_child_perm: raw keeps no metadata, so it takes write and resize only as its parents do.
            childPerm = childPerm.subtracting([.write, .resize]).union(perm.intersection([.write, .resize]))
        }
        return (childPerm, childShared)
    }

    static func filterPermissions(_ perm: BlockPermission, _ shared: BlockPermission) -> (BlockPermission, BlockPermission) {
        (perm.intersection(.passthrough), shared.intersection(.passthrough).union(.unchanged))
    }

    /// Backing files are only ever read, and only consistently if a parent needs that.
    private func cowPermissions(_ perm: BlockPermission, _ shared: BlockPermission) -> (BlockPermission, BlockPermission) {
        var childShared: BlockPermission = shared.contains(.write) ? [.write, .resize] : []
        childShared.formUnion([.consistentRead, .writeUnchanged])
        if inactive { childShared.formUnion([.write, .resize]) }
        return (perm.intersection(.consistentRead), childShared)
    }

    private func storagePermissions(role: ChildRole, _ perm: BlockPermission, _ shared: BlockPermission) -> (BlockPermission, BlockPermission) {
        var (childPerm, childShared) = Self.filterPermissions(perm, shared)
        if role.contains(.metadata) {
            // Format drivers touch metadata even when nobody above writes.
            if isWritable { childPerm.formUnion([.write, .resize]) }
            childPerm.insert(.consistentRead)
            childShared.subtract([.write, .resize])
        }
        if role.contains(.data) {
            childShared.remove(.resize)
            if childPerm.contains(.writeUnchanged) { childPerm.insert(.write) }
            if childPerm.contains(.write) { childPerm.insert(.resize) }
        }
        // An inactive node lets the other process (the migration peer) write and resize.
        if inactive { childShared.formUnion([.write, .resize]) }
        return (childPerm, childShared)
    }
}
