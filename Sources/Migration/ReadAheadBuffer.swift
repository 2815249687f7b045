/// The bytes the destination read from the channel ahead of the decoder: the stream's small
/// fields (record headers, page tables, checksums) come from one read of up to `capacity` bytes
/// instead of a read of their own each (five per record: 2,600 reads for an idle guest's
/// zero pages, and a dozen for the device state at the switch-over).
final class ReadAheadBuffer {
    static let capacity = 64 * 1024
    private let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
    private var start = 0
    private var end = 0

    deinit { storage.deallocate() }

    var isEmpty: Bool { start == end }

    /// Refills the (empty) buffer with one call of `read`; returns how many bytes came (0 at the end).
    func refill(_ read: (UnsafeMutableRawBufferPointer) throws(StreamError) -> Int) throws(StreamError) -> Int {
        precondition(isEmpty, "refilled while holding bytes")
        start = 0
        end = try read(storage)
        return end
    }

    /// Moves up to `buffer.count` buffered bytes into `buffer`; returns how many.
    func take(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, end - start)
        guard count > 0, let target = buffer.baseAddress else { return 0 }
        target.copyMemory(from: storage.baseAddress! + start, byteCount: count)
        start += count
        return count
    }
}
