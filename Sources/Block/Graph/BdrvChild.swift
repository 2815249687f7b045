/// An edge of the block graph (QEMU's BdrvChild): `parent` uses `node` as `name`, taking `perm`
/// and letting other parents of `node` take `sharedPerm`.
public final class BdrvChild {
    public let name: String
    public let role: ChildRole
    public private(set) weak var parent: BlockParent?
    public internal(set) var node: BlockNode
    public internal(set) var perm: BlockPermission
    public internal(set) var sharedPerm: BlockPermission

    init(name: String, role: ChildRole, parent: BlockParent, node: BlockNode,
         perm: BlockPermission, sharedPerm: BlockPermission) {
        self.name = name
        self.role = role
        self.parent = parent
        self.node = node
        self.perm = perm
        self.sharedPerm = sharedPerm
    }

    var userDescription: String { parent?.parentDescription ?? "a detached user" }
}
