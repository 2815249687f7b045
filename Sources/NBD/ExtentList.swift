/// Block-status extents being collected (QEMU's NBDExtentArray): equal neighbours merge, and the
/// list stops at `limit`.
struct ExtentList {
    private(set) var extents: [(length: UInt32, flags: UInt32)] = []
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var isFull: Bool { extents.count >= limit }

    /// nbd_extent_array_add: false when the extent did not fit (the list is full).
    @discardableResult
    mutating func add(_ length: UInt32, _ flags: UInt32) -> Bool {
        guard length > 0 else { return true }
        if let last = extents.last, last.flags == flags, UInt64(last.length) + UInt64(length) <= UInt64(UInt32.max) {
            extents[extents.count - 1].length += length
            return true
        }
        guard extents.count < limit else { return false }
        extents.append((length, flags))
        return true
    }
}
