import Glibc

/// The destination's stream input: what the channel (socket or exec: pipe) delivers, read ahead
/// for the small fields (`ReadAheadBuffer`); page data beyond what was read ahead goes straight
/// into guest RAM.
struct ChannelInput: StreamInput {
    let channel: MigrationChannel
    private let ahead = ReadAheadBuffer()

    init(channel: MigrationChannel) { self.channel = channel }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        if ahead.isEmpty {
            if buffer.count >= ReadAheadBuffer.capacity { return try channel.read(into: buffer) }
            let channel = self.channel
            if try ahead.refill({ (room) throws(StreamError) in try channel.read(into: room) }) == 0 { return 0 }
        }
        return ahead.take(into: buffer)
    }

    /// What was read ahead first, then readv straight into the rest of the buffers (guest pages),
    /// at most IOV_MAX of them a call.
    mutating func read(into buffers: [UnsafeMutableRawBufferPointer]) throws(StreamError) -> Int {
        var total = 0
        var vectors: [iovec] = []
        vectors.reserveCapacity(buffers.count)
        for buffer in buffers {
            let buffered = ahead.take(into: buffer)
            total += buffered
            if buffered < buffer.count {
                vectors.append(iovec(iov_base: buffer.baseAddress! + buffered, iov_len: buffer.count - buffered))
            }
        }
        var first = 0
        while first < vectors.count {
            let batch = min(vectors.count - first, MigrationChannel.maxVectors)
            let count = vectors.withUnsafeMutableBufferPointer { Glibc.readv(channel.input, $0.baseAddress! + first, Int32(batch)) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw StreamError("reading the migration stream: \(String(cString: strerror(errno)))") }
            if count == 0 { return total }
            total += count
            vectors.advance(&first, by: count)
            while first < vectors.count && vectors[first].iov_len == 0 { first += 1 }
        }
        return total
    }
}
