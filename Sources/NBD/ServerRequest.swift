import Block

/// One transmission request a server connection works on, with the buffer it reads into or
/// writes from. The buffer lives until the backend has finished with it.
final class ServerRequest {
    let header: NbdRequestHeader
    /// The pooled buffer (its size class) and the bytes of it the request uses.
    private(set) var buffer: UnsafeMutableRawBufferPointer?
    private let used: Int
    private let pool: BufferPool

    init(_ header: NbdRequestHeader, bufferSize: Int = 0, pool: BufferPool) {
        self.header = header
        self.pool = pool
        used = bufferSize
        if bufferSize > 0 { buffer = pool.take(bufferSize) }
    }

    deinit { if let buffer { pool.give(buffer) } }

    var vector: IoVector {
        buffer.map { IoVector(UnsafeMutableRawBufferPointer(rebasing: $0[0..<used])) } ?? IoVector()
    }
    var offset: Int64 { Int64(header.offset) }
    var length: Int64 { Int64(header.length) }
    var flags: NbdCommandFlags { header.flags }

    /// Hands the buffer to an output segment, which frees it once sent.
    func releaseBuffer() -> OutputSegment? {
        guard let buffer else { return nil }
        self.buffer = nil
        return OutputSegment(base: UnsafeRawPointer(buffer.baseAddress!), count: used) { [pool] in pool.give(buffer) }
    }
}
