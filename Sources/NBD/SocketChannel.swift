import Block
import Glibc

/// A non-blocking stream socket driven by the event loop: buffered input the owner parses,
/// and an output queue so a slow reader never blocks the loop.
final class SocketChannel {
    let fd: Int32
    private let watcher: FdWatcher
    let input: InputBuffer
    private let output = OutputQueue()
    private var interest: FdInterest = .readable
    private(set) var isClosed = false
    /// False while the owner does not want to parse more (too many requests in flight).
    var wantsInput = true {
        didSet { if wantsInput != oldValue { refreshInterest() } }
    }
    /// Called on the loop when input may be available; the owner parses with `need`/`receive`.
    var onReadable: () -> Void = {}
    /// Called when output that had to wait is all sent.
    var onDrained: () -> Void = {}
    /// Called once when the channel closes, with the reason.
    var onClosed: (String) -> Void = { _ in }

    /// Payloads at least this big are read straight into their destination.
    private static let directReadThreshold = 64 << 10

    init(fd: Int32, watcher: FdWatcher, inputCapacity: Int = 256 << 10) throws(BlockError) {
        self.fd = fd
        self.watcher = watcher
        self.input = InputBuffer(capacity: inputCapacity)
        do {
            try watcher.watch(fd, for: .readable, blockLayer: true) { [weak self] ready in self?.handle(ready) }
        } catch {
            throw BlockError(error)
        }
    }

    var pendingOutputBytes: Int { output.pendingBytes }

    // MARK: output

    func send(_ bytes: [UInt8]) { send([.bytes(bytes)]) }

    func send(_ segments: [OutputSegment]) {
        guard !isClosed else {
            for segment in segments { segment.release?() }
            return
        }
        for segment in segments { output.append(segment) }
        flushOutput()
    }

    func flushOutput() {
        guard !isClosed else { return }
        switch output.flush(to: fd) {
        case .drained:
            guard interest.contains(.writable) else { return }
            setWritable(false)
            onDrained()
        case .pending: setWritable(true)
        case .failed(let code): close(reason: "write failed: \(String(cString: strerror(code)))")
        }
    }

    // MARK: input

    /// Makes sure `count` bytes are buffered, reading as needed.
    func need(_ count: Int) -> ReadProgress {
        while input.count < count {
            if let stop = fillOnce() { return stop }
        }
        return .ready
    }

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

    /// Drops `count` incoming bytes; returns how many are still to drop, or the stop reason.
    func skip(_ count: inout Int) -> ReadProgress {
        while count > 0 {
            if input.count > 0 {
                count -= input.skip(count)
            } else if let stop = fillOnce() {
                return stop
            }
        }
        return .ready
    }

    private func fillOnce() -> ReadProgress? {
        stop(for: input.fill(from: fd))
    }

    private func readDirect(into payload: inout IncomingPayload) -> ReadProgress? {
        let slice = payload.vector.slice(offset: payload.received, length: payload.remaining)
        let count = slice.withSegments { readv(fd, $0.baseAddress, Int32(min($0.count, 1024))) }
        let result = SocketReadResult(count, errno: errno)
        if case .bytes(let n) = result { payload.advance(n) }
        return stop(for: result)
    }

    private func stop(for result: SocketReadResult) -> ReadProgress? {
        switch result {
        case .bytes: nil
        case .wouldBlock: .waiting
        case .endOfFile: .closed("Unexpected end-of-file")
        case .failed(let code): .closed(String(cString: strerror(code)))
        }
    }

    // MARK: events

    func handle(_ ready: FdInterest) {
        if ready.contains(.writable) { flushOutput() }
        guard !isClosed else { return }
        if ready.contains(.readable) && wantsInput { onReadable() }
        guard !isClosed, ready.contains(.hangup), !wantsInput || !ready.contains(.readable) else { return }
        // The peer hung up while we do not read: notice end of file now rather than spin.
        if input.hasSpace, case .closed(let reason)? = fillOnce() { close(reason: reason) }
    }

    private func setWritable(_ on: Bool) {
        let wanted = on ? interest.union(.writable) : interest.subtracting(.writable)
        guard wanted != interest else { return }
        interest = wanted
        try? watcher.update(fd, interest: interest)
    }

    private func refreshInterest() {
        guard !isClosed else { return }
        interest = wantsInput ? interest.union(.readable) : interest.subtracting(.readable)
        try? watcher.update(fd, interest: interest)
    }

    /// Closes the socket and drops unsent output; `onClosed` runs once.
    func close(reason: String) {
        guard !isClosed else { return }
        isClosed = true
        watcher.unwatch(fd)
        Glibc.close(fd)
        output.discardAll()
        onClosed(reason)
    }
}
