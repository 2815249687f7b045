/// A stretch of a guest read served from one place.
struct Qcow2ReadRun {
    enum Source: Equatable {
        case host(Int64)
        /// The backing node, at this guest offset.
        case backing(Int64)
        case zeroes
    }

    var vectorOffset: Int
    var length: Int
    var source: Source

    /// Absorbs `next` when it continues this run in the same place (one child request instead of two).
    mutating func merge(_ next: Qcow2ReadRun) -> Bool {
        guard next.vectorOffset == vectorOffset + length else { return false }
        switch (source, next.source) {
        case (.host(let a), .host(let b)) where b == a + Int64(length): break
        case (.backing, .backing), (.zeroes, .zeroes): break
        default: return false
        }
        length += next.length
        return true
    }
}
