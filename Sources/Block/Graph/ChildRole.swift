/// What a child is to its parent (BdrvChildRole): it decides the child's default permissions.
public struct ChildRole: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let data = ChildRole(rawValue: 1 << 0)
    public static let metadata = ChildRole(rawValue: 1 << 1)
    public static let filtered = ChildRole(rawValue: 1 << 2)
    public static let cow = ChildRole(rawValue: 1 << 3)
    public static let primary = ChildRole(rawValue: 1 << 4)

    /// A format's image file (qcow2's `file`).
    public static let image: ChildRole = [.data, .metadata, .primary]
    /// A BlockBackend's root, or a filter's child.
    public static let root: ChildRole = [.filtered, .primary]
}
