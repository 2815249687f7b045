/// Block-status extents being collected: equal neighbours merge, and the list stops at `limit`.
struct ExtentList {
    private(set) var extents: [(length: UInt32, flags: UInt32)] = []
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var isFull: Bool { extents.count >= limit }

    mutating func add(_ length: UInt32, _ flags: UInt32) {
        guard length > 0 else { return }
        if let last = extents.last, last.flags == flags, UInt64(last.length) + UInt64(length) <= UInt64(UInt32.max) {
            extents[extents.count - 1].length += length
            return
        }
        guard extents.count < limit else { return }
        extents.append((length, flags))
    }
}
