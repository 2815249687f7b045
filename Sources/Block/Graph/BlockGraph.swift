import Glibc

/// The block graph of one VM: nodes by name, the BlockBackends on them, and the operations that
/// change edges. Every change is checked over the whole affected subgraph before it is committed.
/// Owned by the event-loop thread.
public final class BlockGraph {
    public private(set) var nodes: [BlockNode] = []
    private var backends: [WeakBackend] = []
    private var autoNameCounter = 0
    /// Runs work on the graph's thread after the current handler returns (the event loop's
    /// runSoon). Drains resume through it rather than inside a request's completion.
    public var runSoon: (@escaping () -> Void) -> Void = { $0() }
    /// Where a format node reports that its image is corrupt (the monitor's BLOCK_IMAGE_CORRUPTED).
    public var onImageCorrupted: ((BlockNode, Qcow2CorruptionReport) -> Void)?
    /// The VM's block jobs (query-jobs, block-job-*), which hold edges into this graph.
    public let jobs = JobRegistry()

    private struct WeakBackend { weak var backend: BlockBackend? }

    public init() {}

    public func node(named name: String) -> BlockNode? { nodes.first { $0.nodeName == name } }

    public var allBackends: [BlockBackend] { backends.compactMap(\.backend) }

    /// A fresh name for a node the user did not name, as QEMU makes them.
    public func makeAutoName() -> String {
        autoNameCounter += 1
        return "#block\(autoNameCounter)\(Int.random(in: 10...99))"
    }

    public func add(_ node: BlockNode) throws(BlockError) {
        guard self.node(named: node.nodeName) == nil else {
            throw BlockError("Duplicate nodes with node-name='\(node.nodeName)'", errno: EEXIST)
        }
        nodes.append(node)
    }

    func register(_ backend: BlockBackend) {
        backends.removeAll { $0.backend == nil }
        backends.append(WeakBackend(backend: backend))
    }

    /// Removes a node nobody uses (and, recursively, children only it used).
    public func remove(_ node: BlockNode) throws(BlockError) {
        guard node.parents.isEmpty else {
            throw BlockError("Node \(node.nodeName) is in use", errno: EBUSY)
        }
        let children = node.children.map(\.node)
        for edge in node.children { try detach(edge, from: node) }
        nodes.removeAll { $0 === node }
        // Children opened implicitly with it go too once nobody uses them (QEMU's refcounting).
        for child in children where !child.isMonitorOwned && child.parents.isEmpty {
            try remove(child)
        }
    }

    // MARK: edges

    /// Runs `change` inside a permission transaction over `affected`, committing or rolling back.
    func transaction(refreshing affected: @autoclosure () -> [BlockNode],
                     _ change: (inout PermissionTransaction) throws(BlockError) -> Void) throws(BlockError) {
        var transaction = PermissionTransaction()
        do {
            try change(&transaction)
            try transaction.refresh(affected())
        } catch {
            transaction.abort()
            throw error
        }
        transaction.commit()
    }

    /// bdrv_attach_child for a node parent: `parent` uses `child` as `name`, with the permissions
    /// its own parents imply for that role.
    @discardableResult
    public func attachChild(_ child: BlockNode, to parent: BlockNode, name: String, role: ChildRole) throws(BlockError) -> BdrvChild {
        if parent === child || Self.isDescendant(parent, of: child) {
            throw BlockError("Making '\(child.nodeName)' a \(name) child of '\(parent.nodeName)' would create a cycle", errno: EINVAL)
        }
        let (perm, shared) = parent.cumulativePermissions
        var (childPerm, childShared) = parent.childPermissions(role: role, perm: perm, shared: shared)
        if child.forceShare { childShared = .all }
        let edge = BdrvChild(name: name, role: role, parent: parent, node: child, perm: childPerm, sharedPerm: childShared)
        try transaction(refreshing: [child]) { (t: inout PermissionTransaction) throws(BlockError) in t.link(edge, into: parent) }
        return edge
    }

    /// Attaches a non-node parent (a BlockBackend root, a job) with explicit permissions.
    func attachRoot(_ node: BlockNode, parent: BlockParent, name: String, role: ChildRole,
                    perm: BlockPermission, shared: BlockPermission) throws(BlockError) -> BdrvChild {
        let edge = BdrvChild(name: name, role: role, parent: parent, node: node, perm: perm, sharedPerm: shared)
        try transaction(refreshing: [node]) { (t: inout PermissionTransaction) throws(BlockError) in t.link(edge, into: nil) }
        return edge
    }

    /// Removes an edge. Only restrictions go away, so a failed re-check is ignored, as in QEMU.
    public func detach(_ edge: BdrvChild, from parentNode: BlockNode?) throws(BlockError) {
        let node = edge.node
        var transaction = PermissionTransaction()
        transaction.unlink(edge, from: parentNode)
        do { try transaction.refresh([node]) } catch {}
        transaction.commit()
    }

    /// bdrv_child_try_set_perm: new permissions on one edge. An error is swallowed when the change
    /// only loosens (takes nothing new, unshares nothing), exactly as QEMU does.
    func setPermissions(of edge: BdrvChild, perm: BlockPermission, shared: BlockPermission) throws(BlockError) {
        let tightens = !edge.perm.isSuperset(of: perm) || !shared.isSuperset(of: edge.sharedPerm)
        do {
            try transaction(refreshing: [edge.node]) { (t: inout PermissionTransaction) throws(BlockError) in
                t.setEdge(edge, perm: perm, shared: shared)
            }
        } catch {
            if tightens { throw error }
            var transaction = PermissionTransaction()
            transaction.setEdge(edge, perm: perm, shared: shared)
            transaction.commit()
        }
    }

    /// bdrv_replace_node: every parent of `from` (except `to` and the nodes below it, which would
    /// make a loop) now uses `to`. Used by snapshots and mirror completion.
    public func replaceNode(_ from: BlockNode, with to: BlockNode) throws(BlockError) {
        let moving = Self.edgesToMove(from: from, to: to)
        try transaction(refreshing: [to, from]) { (t: inout PermissionTransaction) throws(BlockError) in
            for edge in moving.reversed() { t.retarget(edge, to: to) }
        }
    }

    /// Re-checks and re-applies everything below `nodes` (after a node's open state changed).
    public func refresh(_ nodes: [BlockNode]) throws(BlockError) {
        try transaction(refreshing: nodes) { (_: inout PermissionTransaction) throws(BlockError) in }
    }

    /// should_update_child: the parents of `from` that can move to `to` — not `to` itself nor any
    /// node below it, which would make a loop (their edge to `from` stays as it is).
    static func edgesToMove(from: BlockNode, to: BlockNode) -> [BdrvChild] {
        from.parents.filter { edge in
            guard let parent = edge.parent as? BlockNode else { return true }
            return parent !== to && !isDescendant(parent, of: to)
        }
    }

    static func isDescendant(_ node: BlockNode, of ancestor: BlockNode) -> Bool {
        ancestor.children.contains { $0.node === node || isDescendant(node, of: $0.node) }
    }

    /// The nodes nobody holds as a child: the tops of chains.
    public var rootNodes: [BlockNode] {
        nodes.filter { node in !node.parents.contains { $0.parent is BlockNode } }
    }
}
