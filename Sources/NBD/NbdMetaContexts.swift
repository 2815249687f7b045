/// The meta contexts one SET_META_CONTEXT (or LIST_META_CONTEXT) selected on an export
/// (QEMU's NBDExportMetaContexts).
struct NbdMetaContexts {
    var baseAllocation = false
    /// Indices into the export's `bitmaps` that `qemu:dirty-bitmap:NAME` selected.
    var bitmaps: [Bool]

    init(bitmapCount: Int) { bitmaps = [Bool](repeating: false, count: bitmapCount) }

    var count: Int { (baseAllocation ? 1 : 0) + bitmaps.count(where: { $0 }) }

    mutating func selectAll() {
        baseAllocation = true
        selectAllBitmaps()
    }

    mutating func selectAllBitmaps() {
        for index in bitmaps.indices { bitmaps[index] = true }
    }

    /// nbd_meta_base_query and nbd_meta_qemu_query: `query` selects what it names (an empty
    /// namespace or `qemu:dirty-bitmap:` selects everything in it, for LIST only). Compared as
    /// bytes, as QEMU's strcmp does (a String would fold canonically equal names together).
    mutating func select(query: [UInt8], names: [String], isList: Bool) {
        if let rest = Self.shift(query, "base:") {
            if rest.elementsEqual("allocation".utf8) || (rest.isEmpty && isList) { baseAllocation = true }
            return
        }
        guard let rest = Self.shift(query, "qemu:") else { return }
        if rest.isEmpty {
            if isList { selectAllBitmaps() }
            return
        }
        guard let name = Self.shift(rest, "dirty-bitmap:") else { return }
        if name.isEmpty {
            if isList { selectAllBitmaps() }
            return
        }
        if let index = names.firstIndex(where: { $0.utf8.elementsEqual(name) }) { bitmaps[index] = true }
    }

    /// nbd_strshift: what follows `prefix`, if `bytes` begins with it.
    private static func shift(_ bytes: ArraySlice<UInt8>, _ prefix: String) -> ArraySlice<UInt8>? {
        bytes.starts(with: prefix.utf8) ? bytes.dropFirst(prefix.utf8.count) : nil
    }

    private static func shift(_ bytes: [UInt8], _ prefix: String) -> ArraySlice<UInt8>? { shift(bytes[...], prefix) }
}
