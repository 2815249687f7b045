import Glibc

/// The destination's stream input: what the channel (socket or exec: pipe) delivers.
struct ChannelInput: StreamInput {
    let channel: MigrationChannel

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        try channel.read(into: buffer)
    }

    /// readv straight into the buffers (guest pages), at most IOV_MAX of them a call.
    mutating func read(into buffers: [UnsafeMutableRawBufferPointer]) throws(StreamError) -> Int {
        var vectors = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
        var first = 0
        var total = 0
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
