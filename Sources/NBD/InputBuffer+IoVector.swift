import Block

extension InputBuffer {
    /// Moves up to `wanted` buffered bytes into `destination` at `offset`; returns how many.
    func move(into destination: IoVector, at offset: Int, count wanted: Int) -> Int {
        let n = min(wanted, count)
        guard n > 0 else { return 0 }
        withUnreadBytes { destination.slice(offset: offset, length: n).scatter(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return skip(n)
    }
}
