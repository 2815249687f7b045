/// A stretch of a guest write going to contiguous host bytes, with the allocations it completes.
struct Qcow2WritePart {
    var vectorOffset: Int
    var length: Int
    var host: Int64
    var allocations: [Qcow2Allocation]
    /// The write goes through a cluster-sized buffer holding the old contents around it.
    var copyOnWrite: Bool

    /// Absorbs `next` when both are plain writes to adjacent host bytes.
    mutating func merge(_ next: Qcow2WritePart) -> Bool {
        guard !copyOnWrite, !next.copyOnWrite, next.vectorOffset == vectorOffset + length,
              next.host == host + Int64(length) else { return false }
        length += next.length
        allocations += next.allocations
        return true
    }
}
