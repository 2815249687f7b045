import Block
import Glibc

extension SocketChannel {
    /// Payloads at least this big are read straight into their destination.
    static let directReadThreshold = 64 << 10

    /// Fills `payload` from the buffer, then straight from the socket.
    func receive(into payload: inout IncomingPayload) -> ReadProgress {
        while !payload.isComplete {
            if input.count > 0 {
                payload.advance(input.move(into: payload.vector, at: payload.received, count: payload.remaining))
            } else if payload.remaining >= Self.directReadThreshold {
                if let stop = readDirect(into: &payload) { return stop }
            } else if let stop = fillOnce() {
                return stop
            }
        }
        return .ready
    }

    private func readDirect(into payload: inout IncomingPayload) -> ReadProgress? {
        let slice = payload.vector.slice(offset: payload.received, length: payload.remaining)
        let count = slice.withSegments { readv(fd, $0.baseAddress, Int32(min($0.count, 1024))) }
        let result = SocketReadResult(count, errno: errno)
        if case .bytes(let n) = result { payload.advance(n) }
        return stop(for: result)
    }
}
