/// A byte range a mirror request covers (a copy, or a guest write copied in write-blocking mode).
struct MirrorRange: Equatable {
    let offset: Int64
    let length: Int64

    var end: Int64 { offset + length }

    func overlaps(_ other: MirrorRange) -> Bool { offset < other.end && other.offset < end }

    /// Widened to whole granules, as the bitmap sees it.
    func widened(to granularity: Int64) -> MirrorRange {
        let start = offset / granularity * granularity
        let stop = (end + granularity - 1) / granularity * granularity
        return MirrorRange(offset: start, length: stop - start)
    }

    /// The whole granules inside the range (nil if none), which a write fully replaced.
    func narrowed(to granularity: Int64) -> MirrorRange? {
        let start = (offset + granularity - 1) / granularity * granularity
        let stop = end / granularity * granularity
        return stop > start ? MirrorRange(offset: start, length: stop - start) : nil
    }
}
