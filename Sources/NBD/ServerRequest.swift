import Block

/// One transmission request a server connection works on, with the buffer it reads into or
/// writes from. The buffer lives until the backend has finished with it.
final class ServerRequest {
    let header: NbdRequestHeader
    private(set) var buffer: UnsafeMutableRawBufferPointer?

    init(_ header: NbdRequestHeader, bufferSize: Int = 0) {
        self.header = header
        if bufferSize > 0 {
            buffer = .allocate(byteCount: bufferSize, alignment: 4096)
        }
    }

    deinit { buffer?.deallocate() }

    var vector: IoVector { buffer.map { IoVector($0) } ?? IoVector() }
    var offset: Int64 { Int64(header.offset) }
    var length: Int64 { Int64(header.length) }
    var flags: NbdCommandFlags { header.flags }

    /// Hands the buffer to an output segment, which frees it once sent.
    func releaseBuffer() -> OutputSegment? {
        guard let buffer else { return nil }
        self.buffer = nil
        return OutputSegment(base: UnsafeRawPointer(buffer.baseAddress!), count: buffer.count, release: buffer.deallocate)
    }
}
