import Glibc

/// A non-blocking stream socket driven by the event loop: buffered input the owner parses,
/// and an output queue so a slow reader never blocks the loop (the NBD server's and client's
/// connections, QMP's sessions; QEMU's QIOChannelSocket with its watch).
public final class SocketChannel {
    public let fd: Int32
    private let watcher: FdWatcher
    private let blockLayer: Bool
    public let input: InputBuffer
    private let output = OutputQueue()
    private var interest: FdInterest = .readable
    /// Whether `fd` is registered with the watcher (see `inputEnded`).
    private var watched = true
    /// Output is waiting for the socket to take it.
    private var writePending = false
    public private(set) var isClosed = false
    /// False while the owner does not want to parse more (too many requests in flight).
    public var wantsInput = true {
        didSet { if wantsInput != oldValue { refreshInterest() } }
    }
    /// The peer has finished sending: a read returned end of file. An owner that still answers
    /// what it was sent (the QMP monitor, as QEMU's) keeps the channel open: input is no longer
    /// watched, and the socket is unwatched while nothing is to be sent, since epoll reports the
    /// half-closed socket's hang-up on every turn. Unsent output the peer stops taking then closes
    /// the channel rather than wait (the same hang-up would wake the loop over and over).
    public private(set) var inputEnded = false
    private static let stoppedReading = "the peer stopped reading after its end of file"
    /// Set: the loop comes back on its next turn even with nothing to send (writability is
    /// reported at once), after the other descriptors, and calls `onTurn`: for an owner that
    /// rations its work per turn (QMP's queued requests; a deferred job would run first).
    public var wantsTurn = false {
        didSet { if wantsTurn != oldValue { refreshInterest() } }
    }
    public var onTurn: () -> Void = {}
    /// Called when the hang-up path (input not wanted) reads the end of file, instead of closing
    /// the channel; nil: the channel closes with the reason (NBD).
    public var onEndOfInput: (() -> Void)?
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
        self.blockLayer = blockLayer
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
            guard writePending else { return }
            writePending = false
            refreshInterest()
            onDrained()
        case .pending where inputEnded:
            close(reason: Self.stoppedReading)
        case .pending:
            writePending = true
            refreshInterest()
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
        let result = input.fill(from: fd)
        if result == .endOfFile, !inputEnded {
            inputEnded = true
            // A peer that ends its input while its socket is full is not reading its answers
            // either: closed now, as the flush after its end of file would.
            if writePending { close(reason: Self.stoppedReading) } else { refreshInterest() }
        }
        return stop(for: result)
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
        if ready.contains(.readable) && wantsInput && !inputEnded { onReadable() }
        guard !isClosed else { return }
        if ready.contains(.writable) && wantsTurn { onTurn() }
        guard !isClosed, !inputEnded, ready.contains(.hangup), !wantsInput || !ready.contains(.readable) else { return }
        // The peer hung up while we do not read: notice end of file now rather than spin.
        guard input.hasSpace, case .closed(let reason)? = fillOnce() else { return }
        if inputEnded, let onEndOfInput { onEndOfInput() } else { close(reason: reason) }
    }

    /// What the socket is watched for: input while wanted and not ended, writability while
    /// output waits or a turn is wanted; unwatched when neither and the input has ended.
    private func refreshInterest() {
        guard !isClosed else { return }
        var wanted: FdInterest = []
        if wantsInput && !inputEnded { wanted.insert(.readable) }
        if writePending || wantsTurn { wanted.insert(.writable) }
        if inputEnded && wanted.isEmpty {
            if watched { watcher.unwatch(fd) }
            watched = false
            return
        }
        if !watched {
            watched = (try? watcher.watch(fd, for: wanted, blockLayer: blockLayer) { [weak self] ready in self?.handle(ready) }) != nil
            interest = wanted
            return
        }
        guard wanted != interest else { return }
        interest = wanted
        try? watcher.update(fd, interest: interest)
    }

    /// Closes the socket and drops unsent output; `onClosed` runs once.
    public func close(reason: String) {
        guard !isClosed else { return }
        isClosed = true
        if watched { watcher.unwatch(fd) }
        watched = false
        Glibc.close(fd)
        output.discardAll()
        onClosed(reason)
    }
}
