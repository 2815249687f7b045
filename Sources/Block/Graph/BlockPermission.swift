/// QEMU 7.2's four block permissions (BLK_PERM_*): what a parent uses on a node, or lets others use.
public struct BlockPermission: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let consistentRead = BlockPermission(rawValue: 0x01)
    public static let write = BlockPermission(rawValue: 0x02)
    public static let writeUnchanged = BlockPermission(rawValue: 0x04)
    public static let resize = BlockPermission(rawValue: 0x08)

    public static let all: BlockPermission = [.consistentRead, .write, .writeUnchanged, .resize]
    /// DEFAULT_PERM_PASSTHROUGH: what filters forward from parent to child.
    public static let passthrough: BlockPermission = all
    /// DEFAULT_PERM_UNCHANGED: what filters always share (nothing since GRAPH_MOD went away in 6.2).
    public static let unchanged: BlockPermission = []

    static let ordered: [(BlockPermission, message: String, qapi: String)] = [
        (.consistentRead, "consistent read", "consistent-read"),
        (.write, "write", "write"),
        (.writeUnchanged, "write unchanged", "write-unchanged"),
        (.resize, "resize", "resize"),
    ]

    /// As in error messages (`bdrv_perm_names`): "consistent read, write".
    public var messageNames: String {
        Self.ordered.filter { contains($0.0) }.map(\.message).joined(separator: ", ")
    }

    /// As QAPI's BlockPermission enum names them: ["consistent-read", "write"].
    public var qapiNames: [String] {
        Self.ordered.filter { contains($0.0) }.map(\.qapi)
    }

    /// Bit index of each single permission, as the image-locking byte offsets use it.
    static let bits: [(BlockPermission, Int)] = [(.consistentRead, 0), (.write, 1), (.writeUnchanged, 2), (.resize, 3)]

    public var description: String { "[" + qapiNames.joined(separator: ", ") + "]" }
}
