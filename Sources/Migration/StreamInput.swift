/// Where the destination reads the stream from: a socket, a pipe, or bytes in memory.
public protocol StreamInput {
    /// Fills `buffer` from the stream; returns how many bytes it got, fewer only at the end of
    /// the stream.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int
    /// Fills `buffers` in order (readv), as far as the stream goes: returns how many bytes came,
    /// fewer than they hold only at the end of the stream.
    mutating func read(into buffers: [UnsafeMutableRawBufferPointer]) throws(StreamError) -> Int
}

extension StreamInput {
    public mutating func read(into buffers: [UnsafeMutableRawBufferPointer]) throws(StreamError) -> Int {
        var total = 0
        for buffer in buffers {
            var got = 0
            while got < buffer.count {
                let chunk = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...]))
                if chunk == 0 { return total + got }
                got += chunk
            }
            total += got
        }
        return total
    }
}

/// A stream held in memory (unit tests, fuzzing).
public struct BytesInput: StreamInput {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        let count = min(buffer.count, bytes.count - position)
        guard count > 0, let target = buffer.baseAddress else { return 0 }
        bytes.withUnsafeBytes { source in target.copyMemory(from: source.baseAddress! + position, byteCount: count) }
        position += count
        return count
    }
}
