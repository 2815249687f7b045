import Glibc

/// What one non-blocking read from a socket gave.
public enum SocketReadResult: Sendable, Equatable {
    case bytes(Int)
    case wouldBlock
    case endOfFile
    case failed(Int32)

    /// Reads with `read`/`readv` semantics: the byte count or -1 with errno.
    public init(_ count: Int, errno code: Int32) {
        if count > 0 {
            self = .bytes(count)
        } else if count == 0 {
            self = .endOfFile
        } else if code == EAGAIN || code == EWOULDBLOCK || code == EINTR {
            self = .wouldBlock
        } else {
            self = .failed(code)
        }
    }
}
