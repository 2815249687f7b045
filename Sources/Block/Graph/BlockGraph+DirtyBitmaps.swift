import Glibc

/// The dirty-bitmap operations of QMP's block-dirty-bitmap-* commands (blockdev.c and
/// block/monitor/bitmap-qmp-cmds.c), with QEMU 7.2's checks and texts.
extension BlockGraph {
    /// qmp_block_dirty_bitmap_add.
    public func addDirtyBitmap(node nodeName: String, name: String, granularity: Int64?, persistent: Bool,
                               disabled: Bool) throws(BlockError) {
        guard !name.isEmpty else { throw BlockError("Bitmap name cannot be empty", errno: EINVAL) }
        let node = try lookup(nodeName)
        if let granularity, granularity < 512 || granularity.nonzeroBitCount != 1 {
            throw BlockError("Granularity must be power of 2 and at least 512", errno: EINVAL)
        }
        if persistent {
            // Bitmaps are not stored in images (svmm writes no qcow2 bitmap extension).
            throw BlockError("Can't store persistent bitmaps to \(node.deviceOrNodeName): Operation not supported", errno: ENOTSUP)
        }
        if node.dirtyBitmaps.contains(where: { $0.name == name }) {
            throw BlockError("Bitmap already exists: \(name)", errno: EEXIST)
        }
        guard name.utf8.count <= BdrvDirtyBitmap.maxNameLength else {
            throw BlockError("Bitmap name too long: \(name)", errno: EINVAL)
        }
        let bitmap = BdrvDirtyBitmap(name: name, granularity: granularity ?? Self.defaultGranularity(node),
                                     length: node.driver.length, enabled: !disabled)
        node.dirtyBitmaps.insert(bitmap, at: 0)  // QEMU lists the newest first
    }

    /// bdrv_get_default_bitmap_granularity: the cluster size within [4 KiB, 64 KiB], else 64 KiB.
    static func defaultGranularity(_ node: BlockNode) -> Int64 {
        guard let qcow2 = node.driver as? Qcow2Driver else { return 65536 }
        return min(65536, max(4096, Int64(qcow2.formatInfo.clusterSize)))
    }

    /// qmp_block_dirty_bitmap_remove.
    public func removeDirtyBitmap(node nodeName: String, name: String) throws(BlockError) {
        let (node, bitmap) = try dirtyBitmap(node: nodeName, name: name)
        try Self.checkNotBusy(bitmap)
        node.dirtyBitmaps.removeAll { $0 === bitmap }
    }

    /// qmp_block_dirty_bitmap_clear.
    public func clearDirtyBitmap(node nodeName: String, name: String) throws(BlockError) {
        let bitmap = try dirtyBitmap(node: nodeName, name: name).1
        try Self.checkNotBusy(bitmap)
        bitmap.clear()
    }

    /// qmp_block_dirty_bitmap_enable / _disable (BDRV_BITMAP_ALLOW_RO: only a busy one is refused).
    public func setDirtyBitmapEnabled(node nodeName: String, name: String, _ enabled: Bool) throws(BlockError) {
        let bitmap = try dirtyBitmap(node: nodeName, name: name).1
        try Self.checkNotBusy(bitmap)
        bitmap.isEnabled = enabled
    }

    /// qmp_block_dirty_bitmap_merge: `sources` are (node, name) pairs; a source named without a
    /// node is on `node`. Every source is looked up before anything changes.
    public func mergeDirtyBitmaps(node nodeName: String, target: String, sources: [(node: String?, name: String)]) throws(BlockError) {
        let destination = try dirtyBitmap(node: nodeName, name: target).1
        try Self.checkNotBusy(destination)
        var found: [BdrvDirtyBitmap] = []
        for source in sources {
            found.append(try dirtyBitmap(node: source.node ?? nodeName, name: source.name).1)
        }
        if found.contains(where: { $0.length != destination.length }) {
            throw BlockError("Bitmaps are incompatible and can't be merged", errno: EINVAL)
        }
        for bitmap in found where bitmap !== destination { destination.merge(bitmap) }
    }

    /// block_dirty_bitmap_lookup.
    public func dirtyBitmap(node nodeName: String, name: String) throws(BlockError) -> (BlockNode, BdrvDirtyBitmap) {
        guard let node = try? lookup(nodeName) else { throw BlockError("Node '\(nodeName)' not found", errno: ENOENT) }
        guard let bitmap = node.dirtyBitmaps.first(where: { $0.name == name }) else {
            throw BlockError("Dirty bitmap '\(name)' not found", errno: ENOENT)
        }
        return (node, bitmap)
    }

    /// The bitmap `name` on `node` or the first node below it that has one, following filtered
    /// children and backing files (nbd_export_create's bdrv_find_dirty_bitmap loop over
    /// bdrv_filter_or_cow_bs): the node it is on, and the bitmap.
    public func findDirtyBitmap(_ name: String, from node: BlockNode) -> (BlockNode, BdrvDirtyBitmap)? {
        var current: BlockNode? = node
        while let searched = current {
            if let bitmap = searched.dirtyBitmaps.first(where: { $0.name == name }) { return (searched, bitmap) }
            current = searched.filterOrCowChild
        }
        return nil
    }

    /// bdrv_dirty_bitmap_check: a busy bitmap is refused (svmm's bitmaps are never read-only or
    /// inconsistent, the other states QEMU checks, since none is loaded from an image).
    public static func checkNotBusy(_ bitmap: BdrvDirtyBitmap) throws(BlockError) {
        if bitmap.isBusy {
            throw BlockError("Bitmap '\(bitmap.name)' is currently in use by another operation and cannot be used", errno: EBUSY)
        }
    }

    // MARK: migration (migration/block-dirty-bitmap.c's use of the bitmap API)

    /// init_dirty_bitmap_migration: every named bitmap, under the name of the BlockBackend whose
    /// root it is on (filters without named bitmaps skipped, so a mirror's filter hides nothing),
    /// else under its node's name. Refused: a bitmap in use, a name longer than 255 bytes, a
    /// node with an auto-generated name. Nothing is changed; the caller marks them busy.
    public func migratableBitmaps() throws(BlockError) -> [(alias: String, node: BlockNode, bitmap: BdrvDirtyBitmap)] {
        var found: [(alias: String, node: BlockNode, bitmap: BdrvDirtyBitmap)] = []
        var handled: [BlockNode] = []
        for backend in allBackends {
            guard let name = backend.name, !name.isEmpty else { continue }
            var node = backend.node
            while let filter = node, filter.driver.isFilter, !Self.hasNamedBitmaps(filter) {
                node = filter.filterOrCowChild
            }
            // (A raw node without offset counts as a filter here, but is QEMU's format node: one
            // that has the named bitmaps is where the skipping stops.)
            guard let node, !node.driver.isFilter || Self.hasNamedBitmaps(node), !handled.contains(where: { $0 === node }) else { continue }
            found += try Self.namedBitmaps(of: node, alias: name)
            handled.append(node)
        }
        for node in nodes where !handled.contains(where: { $0 === node }) {
            found += try Self.namedBitmaps(of: node, alias: node.nodeName)
        }
        return found
    }

    private static func hasNamedBitmaps(_ node: BlockNode) -> Bool { node.dirtyBitmaps.contains { !$0.name.isEmpty } }

    /// add_bitmaps_to_list.
    private static func namedBitmaps(of node: BlockNode, alias: String) throws(BlockError)
        -> [(alias: String, node: BlockNode, bitmap: BdrvDirtyBitmap)] {
        let named = node.dirtyBitmaps.filter { !$0.name.isEmpty }
        guard let first = named.first else { return [] }
        if alias.hasPrefix("#") {
            throw BlockError("Bitmap '\(first.name)' in a node with auto-generated name '\(alias)' can't be migrated", errno: EINVAL)
        }
        for bitmap in named {
            try checkNotBusy(bitmap)
            if bitmap.name.utf8.count > 255 {
                throw BlockError("Cannot migrate bitmap '\(bitmap.name)' on node '\(alias)': Name is longer than 255 bytes", errno: EINVAL)
            }
        }
        return named.map { (alias, node, $0) }
    }

    /// bdrv_create_dirty_bitmap as an incoming migration calls it: the name and granularity come
    /// from the stream (checked by the caller), the bitmap starts disabled, newest first.
    public func createIncomingBitmap(on node: BlockNode, name: String, granularity: Int64) -> BdrvDirtyBitmap {
        let bitmap = BdrvDirtyBitmap(name: name, granularity: granularity, length: node.driver.length, enabled: false)
        node.dirtyBitmaps.insert(bitmap, at: 0)
        return bitmap
    }

    /// bdrv_dirty_bitmap_create_successor: an anonymous, disabled bitmap of the same granularity
    /// that will record the writes while `bitmap` (now busy) is being filled.
    public func createSuccessor(of bitmap: BdrvDirtyBitmap, on node: BlockNode) {
        let successor = BdrvDirtyBitmap(name: "", granularity: bitmap.granularity, length: bitmap.length, enabled: false)
        node.dirtyBitmaps.insert(successor, at: 0)
        bitmap.successor = successor
        bitmap.setBusy(true)
    }

    /// bdrv_dirty_bitmap_enable_successor: the VM runs, its writes are recorded.
    public func enableSuccessor(of bitmap: BdrvDirtyBitmap) { bitmap.successor?.isEnabled = true }

    /// bdrv_enable_dirty_bitmap for a migrated bitmap (no checks: the migration owns it).
    public func enableMigratedBitmap(_ bitmap: BdrvDirtyBitmap) { bitmap.isEnabled = true }

    /// bdrv_reclaim_dirty_bitmap: the successor's bits join the bitmap, which takes over its
    /// recording state and is no longer busy; the successor goes.
    public func reclaimSuccessor(of bitmap: BdrvDirtyBitmap, on node: BlockNode) {
        guard let successor = bitmap.successor else { return bitmap.setBusy(false) }
        bitmap.merge(successor)
        bitmap.isEnabled = successor.isEnabled
        node.dirtyBitmaps.removeAll { $0 === successor }
        bitmap.successor = nil
        bitmap.setBusy(false)
    }

    /// bdrv_release_dirty_bitmap of a bitmap an incoming migration could not finish.
    public func releaseIncomingBitmap(_ bitmap: BdrvDirtyBitmap, on node: BlockNode) {
        reclaimSuccessor(of: bitmap, on: node)
        node.dirtyBitmaps.removeAll { $0 === bitmap }
    }
}
