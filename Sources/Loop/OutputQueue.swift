import Glibc

/// What a socket still has to send: a queue of segments written with `sendmsg` as the peer reads.
public final class OutputQueue {
    public enum FlushResult: Equatable { case drained, pending, failed(Int32) }

    private var segments: [OutputSegment] = []
    private var head = 0
    /// Bytes of `segments[head]` already sent.
    private var headSent = 0
    public private(set) var pendingBytes = 0

    public init() {}

    deinit { discardAll() }

    public var isEmpty: Bool { head == segments.count }

    public func append(_ segment: OutputSegment) {
        guard segment.count > 0 else {
            segment.release?()
            return
        }
        segments.append(segment)
        pendingBytes += segment.count
    }

    /// Sends as much as the socket takes without blocking.
    public func flush(to fd: Int32) -> FlushResult {
        while !isEmpty {
            let sent = sendSome(fd)
            if sent < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK { return .pending }
                if code == EINTR { continue }
                return .failed(code)
            }
            advance(by: sent)
        }
        return .drained
    }

    /// Releases everything unsent (the connection is gone).
    public func discardAll() {
        for segment in segments[head...] { segment.release?() }
        segments.removeAll()
        head = 0
        headSent = 0
        pendingBytes = 0
    }

    private func sendSome(_ fd: Int32) -> Int {
        var vectors: [iovec] = []
        vectors.reserveCapacity(min(segments.count - head, 64))
        for (index, segment) in segments[head...].prefix(64).enumerated() {
            let skip = index == 0 ? headSent : 0
            vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: segment.base + skip), iov_len: segment.count - skip))
        }
        return vectors.withUnsafeMutableBufferPointer { buffer in
            var message = msghdr()
            message.msg_iov = buffer.baseAddress
            message.msg_iovlen = buffer.count
            return sendmsg(fd, &message, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
        }
    }

    private func advance(by sent: Int) {
        pendingBytes -= sent
        var left = sent
        while left > 0 {
            let segment = segments[head]
            let take = min(left, segment.count - headSent)
            headSent += take
            left -= take
            if headSent == segment.count {
                segment.release?()
                head += 1
                headSent = 0
            }
        }
        compact()
    }

    private func compact() {
        if head == segments.count {
            segments.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 256 {
            segments.removeFirst(head)
            head = 0
        }
    }
}
