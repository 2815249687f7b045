/// The kinds of qcow2 metadata a write must never land on (QEMU's QCOW2_OL_* bits, in the order
/// qcow2_check_metadata_overlap checks them), named as QEMU's metadata_ol_names names them.
struct Qcow2MetadataOverlap: OptionSet, Sendable {
    let rawValue: Int

    static let mainHeader = Self(rawValue: 1 << 0)
    static let activeL1 = Self(rawValue: 1 << 1)
    static let activeL2 = Self(rawValue: 1 << 2)
    static let refcountTable = Self(rawValue: 1 << 3)
    static let refcountBlock = Self(rawValue: 1 << 4)
    static let snapshotTable = Self(rawValue: 1 << 5)
    static let inactiveL1 = Self(rawValue: 1 << 6)

    /// The name QEMU puts in "Preventing invalid write on metadata (overlaps with ...)".
    var name: String {
        switch self {
        case .mainHeader: "qcow2_header"
        case .activeL1: "active L1 table"
        case .activeL2: "active L2 table"
        case .refcountTable: "refcount table"
        case .refcountBlock: "refcount block"
        case .snapshotTable: "snapshot table"
        case .inactiveL1: "inactive L1 table"
        default: "metadata"
        }
    }
}
