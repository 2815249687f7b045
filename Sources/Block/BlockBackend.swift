import Glibc

/// What a device or an export holds to do I/O on a node (QEMU's BlockBackend): a `root` edge
/// with the permissions its user asked for. With `disablePerm` set (a guest device attached
/// during incoming migration), `setPerm` only records; `resumeAfterMigration` applies.
public final class BlockBackend: BlockParent {
    public let graph: BlockGraph
    /// The monitor name; nil for anonymous backends (devices on -blockdev nodes, exports).
    public let name: String?
    /// The attached device's id (or QOM path), which permission errors name.
    public private(set) var deviceName: String?
    public private(set) var root: BdrvChild?
    public private(set) var perm: BlockPermission
    public private(set) var sharedPerm: BlockPermission
    public private(set) var disablePerm = false
    /// The attached device's I/O statistics (blk_get_stats), for query-blockstats.
    public let stats = BlockAcctStats()
    /// Requests that arrived while the root node was drained, in arrival order.
    private var heldBack: [() -> Void] = []
    /// rerror / werror (BlockdevOnError), blk_new's defaults: report for reads, enospc for writes.
    public var onReadError: JobErrorPolicy = .report
    public var onWriteError: JobErrorPolicy = .enospc
    /// blk_iostatus_enable: a device that can stop on errors shows `io-status` (virtio-blk does).
    public var ioStatusEnabled = false
    public internal(set) var ioStatus: BlockIoStatus = .ok
    /// Where `reportError` sends BLOCK_IO_ERROR (the machine, which also stops the VM on `stop`).
    public var onIoError: ((BlockIoErrorReport) -> Void)?

    public init(graph: BlockGraph, name: String? = nil, perm: BlockPermission, shared: BlockPermission) {
        self.graph = graph
        self.name = name
        self.perm = perm
        self.sharedPerm = shared
        graph.register(self)
    }

    deinit {
        if let root { try? graph.detach(root, from: nil) }
    }

    public var parentDescription: String {
        if let name { return "block device '\(name)'" }
        if let deviceName, !deviceName.isEmpty { return "block device '\(deviceName)'" }
        return "an unnamed block device"
    }

    public var node: BlockNode? { root?.node }

    /// blk_insert_bs: attach to `node` with the recorded permissions.
    public func insert(_ node: BlockNode) throws(BlockError) {
        precondition(root == nil, "BlockBackend already has a root node")
        root = try graph.attachRoot(node, parent: self, name: "root", role: .root, perm: perm, shared: sharedPerm)
    }

    public func removeNode() {
        guard let root else { return }
        try? graph.detach(root, from: nil)
        self.root = nil
    }

    /// blk_attach_dev: a guest device now owns this backend. While an incoming migration runs,
    /// its permissions are recorded but not applied, so a storage-migration writer can go on.
    public func attachDevice(_ name: String, incomingMigration: Bool) {
        deviceName = name
        if incomingMigration { disablePerm = true }
    }

    /// blk_set_perm.
    public func setPerm(_ newPerm: BlockPermission, shared newShared: BlockPermission) throws(BlockError) {
        if let root, !disablePerm {
            try graph.setPermissions(of: root, perm: newPerm, shared: newShared)
        }
        perm = newPerm
        sharedPerm = newShared
    }

    /// Applies the permissions recorded during incoming migration; on conflict nothing changes,
    /// the flag stays set and the caller (resuming the VM) fails with the error.
    public func resumeAfterMigration() throws(BlockError) {
        guard disablePerm else { return }
        disablePerm = false
        do {
            try setPerm(perm, shared: sharedPerm)
        } catch {
            disablePerm = true
            throw error
        }
    }

    /// Whether the image may go inactive under this backend: guest devices and named backends
    /// yes (their permissions come back on resume); an anonymous writer (an export) no.
    public var allowsInactivation: Bool {
        forceAllowInactivate || deviceName != nil || name != nil || perm.isDisjoint(with: [.write, .writeUnchanged])
    }

    var inactivationRefusal: BlockError {
        BlockError("Cannot inactivate node '\(root?.node.nodeName ?? "")': \(parentDescription) still writes it", errno: EPERM)
    }

    /// BlockBackend.force_allow_inactivate: a writer that may go inactive anyway (a mirror job's
    /// target, so that migration can finish while a mirror to an NBD target runs, iotest 194).
    public var forceAllowInactivate = false

    /// blk_set_disable_request_queuing: this backend's requests go on during a drained section
    /// instead of waiting for its end (a job's own I/O, which the drain waits for; queued, the
    /// mirror's copy would reach its target only after the drain's change, e.g. inactivation).
    public var disableRequestQueuing = false

    /// blk_wait_while_drained's condition.
    private func mustWait(_ root: BdrvChild) -> Bool {
        root.node.isQuiesced && !disableRequestQueuing
    }

    /// blk_root_inactivate: stop applying permissions and release the root edge's.
    func inactivate() throws(BlockError) {
        guard !disablePerm else { return }
        guard allowsInactivation else { throw inactivationRefusal }
        disablePerm = true
        if let root { try graph.setPermissions(of: root, perm: [], shared: .all) }
    }

    // MARK: I/O

    /// The size of the node the root edge points at now.
    public var length: Int64 { root?.length ?? 0 }
    /// The device sees a read-only medium when the node cannot be written.
    public var isReadOnly: Bool { root.map { $0.node.readOnly } ?? true }

    public func plug() { root?.plug() }
    public func unplug() { root?.unplug() }

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        guard let root = checked(offset, Int64(vector.totalLength), needs: [], completion) else { return }
        if mustWait(root) { return holdBack { [self] in read(at: offset, into: vector, completion: completion) } }
        root.read(at: offset, into: vector, completion: completion)
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        guard let root = checked(offset, Int64(vector.totalLength), needs: .write, completion) else { return }
        if mustWait(root) { return holdBack { [self] in write(at: offset, from: vector, completion: completion) } }
        root.write(at: offset, from: vector, completion: completion)
    }

    public func flush(completion: @escaping IoCompletion) {
        guard let root else { return completion(.failure(BlockError("No medium inserted", errno: ENOMEDIUM))) }
        if mustWait(root) { return holdBack { [self] in flush(completion: completion) } }
        root.flush(completion: completion)
    }

    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        guard let root = checked(offset, length, needs: .write, completion) else { return }
        if mustWait(root) { return holdBack { [self] in discard(at: offset, length: length, completion: completion) } }
        root.discard(at: offset, length: length, completion: completion)
    }

    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        guard let root = checked(offset, length, needs: .write, completion) else { return }
        if mustWait(root) { return holdBack { [self] in writeZeroes(at: offset, length: length, mayUnmap: mayUnmap, completion: completion) } }
        root.writeZeroes(at: offset, length: length, mayUnmap: mayUnmap, completion: completion)
    }

    /// blk_wait_while_drained: while the node under the root is in a drained section, a new
    /// request waits here and starts again (through whatever edge the root is then) at its end.
    /// (Callers test `mustWait` first, so the fast path makes no closure.)
    private func holdBack(_ request: @escaping () -> Void) {
        heldBack.append(request)
    }

    /// Starts the requests held back by a drained section that has ended.
    func releaseHeldRequests() {
        guard !heldBack.isEmpty, !(root?.node.isQuiesced ?? false) else { return }
        let requests = heldBack
        heldBack.removeAll()
        requests.forEach { $0() }
    }

    /// The root edge, if the backend holds `needs` on it and the range is inside the disk.
    private func checked(_ offset: Int64, _ length: Int64, needs: BlockPermission, _ completion: IoCompletion) -> BdrvChild? {
        guard let root else {
            completion(.failure(BlockError("No medium inserted", errno: ENOMEDIUM)))
            return nil
        }
        guard root.perm.isSuperset(of: needs) else {
            let error = root.node.readOnly ? "Block node is read-only" : "Permission '\(needs.messageNames)' not held on node '\(root.node.nodeName)'"
            completion(.failure(BlockError(error, errno: EPERM)))
            return nil
        }
        let (end, overflow) = offset.addingReportingOverflow(length)
        if offset < 0 || length < 0 || overflow || end > root.length {
            completion(.failure(BlockError("request [\(offset), +\(length)) is beyond the end of the disk", errno: EINVAL)))
            return nil
        }
        return root
    }
}
