import Glibc

/// A non-blocking stream socket driven by the event loop: buffered input the owner parses,
/// and an output queue so a slow reader never blocks the loop (the NBD server's and client's
/// connections; QEMU's QIOChannelSocket with its watch).
public final class SocketChannel {
    public let fd: Int32
    private let watcher: FdWatcher
    public let input: InputBuffer
    private let output = OutputQueue()
    private var interest: FdInterest = .readable
    public private(set) var isClosed = false
    /// False while the owner does not want to parse more (too many requests in flight).
    public var wantsInput = true {
        didSet { if wantsInput != oldValue { refreshInterest() } }
    }
    /// Called on the loop when input may be available; the owner parses with `need`/`receive`.
    public var onReadable: () -> Void = {}
    /// Called when output that had to wait is all sent.
    public var onDrained: () -> Void = {}
    /// Called once when the channel closes, with the reason.
    public var onClosed: (String) -> Void = { _ in }

    /// Watches `fd` on `watcher`'s loop; `blockLayer`: its handlers also run while a synchronous
    /// block request waits (NBD connections, see FdWatcher.pollBlockLayer).
    public init(fd: Int32, watcher: FdWatcher, blockLayer: Bool, inputCapacity: Int = 256 << 10) throws(SystemCallError) {
        self.fd = fd
        self.watcher = watcher
        self.input = InputBuffer(capacity: inputCapacity)
        try watcher.watch(fd, for: .readable, blockLayer: blockLayer) { [weak self] ready in self?.handle(ready) }
    }

    public var pendingOutputBytes: Int { output.pendingBytes }

    // MARK: output

    public func send(_ bytes: [UInt8]) { send([.bytes(bytes)]) }

    public func send(_ segments: [OutputSegment]) {
        guard !isClosed else {
            for segment in segments { segment.release?() }
            return
        }
        for segment in segments { output.append(segment) }
        flushOutput()
    }

    public func flushOutput() {
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
    public func need(_ count: Int) -> ReadProgress {
        while input.count < count {
            if let stop = fillOnce() { return stop }
        }
        return .ready
    }

    /// Drops `count` incoming bytes; returns how many are still to drop, or the stop reason.
    public func skip(_ count: inout Int) -> ReadProgress {
        while count > 0 {
            if input.count > 0 {
                count -= input.skip(count)
            } else if let stop = fillOnce() {
                return stop
            }
        }
        return .ready
    }

    /// One read into the input buffer: nil when bytes came, else why the reader must stop.
    public func fillOnce() -> ReadProgress? {
        stop(for: input.fill(from: fd))
    }

    /// What a read result means to a parser: nil to go on, `.waiting`, or `.closed` with QEMU's reason.
    public func stop(for result: SocketReadResult) -> ReadProgress? {
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
    public func close(reason: String) {
        guard !isClosed else { return }
        isClosed = true
        watcher.unwatch(fd)
        Glibc.close(fd)
        output.discardAll()
        onClosed(reason)
    }
}
