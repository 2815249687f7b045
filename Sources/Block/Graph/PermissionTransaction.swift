import Glibc

/// A tentative change to the block graph's edges and permissions (QEMU's Transaction around
/// bdrv_list_refresh_perms): every affected node is checked, parents before children, and the
/// change is then either committed (drivers take their image locks) or rolled back completely.
struct PermissionTransaction {
    private var edgeBackups: [(BdrvChild, BlockPermission, BlockPermission)] = []
    private var undo: [() -> Void] = []
    private var checkedNodes: [BlockNode] = []

    /// Changes what an edge takes and shares, remembering the old values.
    mutating func setEdge(_ edge: BdrvChild, perm: BlockPermission, shared: BlockPermission) {
        if !edgeBackups.contains(where: { $0.0 === edge }) {
            edgeBackups.append((edge, edge.perm, edge.sharedPerm))
        }
        edge.perm = perm
        edge.sharedPerm = shared
    }

    /// Links a new edge into its child's parent list (newest first) and, for a node parent, its child list.
    mutating func link(_ edge: BdrvChild, into parentNode: BlockNode?) {
        edge.node.parents.insert(edge, at: 0)
        parentNode?.children.append(edge)
        undo.append {
            edge.node.parents.removeAll { $0 === edge }
            parentNode?.children.removeAll { $0 === edge }
        }
    }

    mutating func unlink(_ edge: BdrvChild, from parentNode: BlockNode?) {
        let node = edge.node
        let parentIndex = node.parents.firstIndex { $0 === edge }
        let childIndex = parentNode?.children.firstIndex { $0 === edge }
        node.parents.removeAll { $0 === edge }
        parentNode?.children.removeAll { $0 === edge }
        undo.append {
            if let parentIndex { node.parents.insert(edge, at: min(parentIndex, node.parents.count)) }
            if let childIndex, let parentNode { parentNode.children.insert(edge, at: min(childIndex, parentNode.children.count)) }
        }
    }

    /// Points an existing edge at another node.
    mutating func retarget(_ edge: BdrvChild, to newNode: BlockNode) {
        let oldNode = edge.node
        oldNode.parents.removeAll { $0 === edge }
        newNode.parents.insert(edge, at: 0)
        edge.node = newNode
        undo.append {
            newNode.parents.removeAll { $0 === edge }
            oldNode.parents.insert(edge, at: 0)
            edge.node = oldNode
        }
    }

    /// Re-derives permissions below `nodes` and checks them; throws QEMU's error on the first conflict.
    mutating func refresh(_ nodes: [BlockNode]) throws(BlockError) {
        for node in Self.topologicalOrder(from: nodes) {
            try Self.checkParents(of: node)
            let (perm, shared) = node.cumulativePermissions
            if !perm.isDisjoint(with: [.write, .writeUnchanged]) && !node.isWritable {
                throw BlockError("Block node is read-only", errno: EPERM)
            }
            try node.driver.checkPermissions(perm, shared: shared)
            if !checkedNodes.contains(where: { $0 === node }) { checkedNodes.append(node) }
            for edge in node.children {
                var (childPerm, childShared) = node.childPermissions(role: edge.role, perm: perm, shared: shared)
                if edge.node.forceShare { childShared = .all }
                setEdge(edge, perm: childPerm, shared: childShared)
            }
        }
    }

    /// Makes the change final: drivers apply what they checked (image locks).
    func commit() {
        for node in checkedNodes {
            let (perm, shared) = node.cumulativePermissions
            node.driver.applyPermissions(perm, shared: shared)
        }
    }

    /// Puts every edge and link back as it was.
    func abort() {
        for action in undo.reversed() { action() }
        for (edge, perm, shared) in edgeBackups.reversed() {
            edge.perm = perm
            edge.sharedPerm = shared
        }
    }

    /// bdrv_parent_perms_conflict: every parent must share what every other parent takes.
    static func checkParents(of node: BlockNode) throws(BlockError) {
        for a in node.parents {
            for b in node.parents where a !== b && !a.sharedPerm.isSuperset(of: b.perm) {
                let names = b.perm.subtracting(a.sharedPerm).messageNames
                let nodeName = node.nodeName
                throw BlockError("Permission conflict on node '\(nodeName)': permissions '\(names)' are both required by "
                    + "\(b.userDescription) (uses node '\(nodeName)' as '\(b.name)' child) and unshared by "
                    + "\(a.userDescription) (uses node '\(nodeName)' as '\(a.name)' child).", errno: EPERM)
            }
        }
    }

    /// The nodes below `roots` (roots included), parents before children.
    static func topologicalOrder(from roots: [BlockNode]) -> [BlockNode] {
        var visited = Set<ObjectIdentifier>()
        var postOrder: [BlockNode] = []
        func visit(_ node: BlockNode) {
            guard visited.insert(ObjectIdentifier(node)).inserted else { return }
            for edge in node.children { visit(edge.node) }
            postOrder.append(node)
        }
        roots.forEach(visit)
        return postOrder.reversed()
    }
}
