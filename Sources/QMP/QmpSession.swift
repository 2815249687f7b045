import Block
import Glibc

/// One QMP client connection: greeting, capabilities negotiation, commands in order (an
/// asynchronous command holds back the ones after it), events once negotiated. A client that
/// vanishes, even mid-command, only closes its own session.
final class QmpSession {
    /// Bytes read per readiness event: one client's flood cannot hold the loop for longer than
    /// it takes to split and answer this much (QEMU's monitor reads in small chunks too).
    static let readChunk = 64 << 10
    /// Requests dispatched per loop turn before the session yields to the other file descriptors.
    static let piecesPerTurn = 256
    /// Unsent output over which the session stops reading: a client that does not read its
    /// replies cannot make svmm buffer an unbounded amount of them.
    static let outputLimit = 1 << 20
    /// Requests waiting behind a busy command over which the session stops reading.
    static let queueLimit = 1024

    private let fd: Int32
    private unowned let monitor: QmpMonitor
    private let watcher: FdWatcher
    private var splitter = JSONStreamSplitter()
    /// Pieces waiting for dispatch, from `queueHead` on (an index, not removeFirst per piece).
    private var queued: [JSONStreamSplitter.Piece] = []
    private var queueHead = 0
    private var busy = false
    /// True while `monitor.execute` runs: a command that answers at once needs no wake-up.
    private var dispatching = false
    private var outbound: [UInt8] = []
    private var outboundSent = 0
    /// The client has closed its sending side: answer what it sent, then close.
    private var inputClosed = false
    private var interest: FdInterest? = .readable
    private(set) var negotiated = false
    private(set) var closed = false

    init(fd: Int32, monitor: QmpMonitor, watcher: FdWatcher) throws(SystemCallError) {
        self.fd = fd
        self.monitor = monitor
        self.watcher = watcher
        try watcher.watch(fd, for: .readable) { [weak self] ready in self?.handle(ready) }
        send(monitor.greeting)
    }

    private var pendingOutput: Int { outbound.count - outboundSent }
    private var queuedCount: Int { queued.count - queueHead }

    private var wantsInput: Bool {
        !inputClosed && pendingOutput < Self.outputLimit && queuedCount < Self.queueLimit
    }

    private func handle(_ ready: FdInterest) {
        if ready.contains(.writable) { flush() }
        // A hang-up is read even while throttled: the peer can send nothing more, so what is left is
        // bounded, and the end of file must be seen or the level-triggered hang-up comes back at
        // once, turn after turn (as NBD's SocketChannel does).
        if !closed && !inputClosed && ((wantsInput && ready.contains(.readable)) || ready.contains(.hangup)) { readChunk() }
        processQueued()
    }

    /// One bounded read; level-triggered readiness brings the session back for the rest.
    private func readChunk() {
        var buffer = [UInt8](repeating: 0, count: Self.readChunk)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count > 0 {
            queued += splitter.feed(buffer[..<count])
        } else if count == 0 {
            inputClosed = true  // EOF: what was sent still gets its answers
        } else if errno != EAGAIN && errno != EINTR {
            close()
        }
    }

    /// Dispatches queued requests in order, at most `piecesPerTurn` per call; with more left,
    /// it asks for writability, which the next loop turn reports at once, to come back after
    /// the other clients (a deferred job would run before them).
    private func processQueued() {
        var budget = Self.piecesPerTurn
        while !busy && !closed && queueHead < queued.count && pendingOutput < Self.outputLimit && budget > 0 {
            budget -= 1
            let piece = queued[queueHead]
            queueHead += 1
            if case .text(let bytes) = piece {
                dispatch(bytes)
            } else if let message = piece.errorMessage {
                send(Self.errorReply(QmpError(message), id: nil))
            }
        }
        if queueHead == queued.count {
            queued.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead > 4096 && queueHead * 2 > queued.count {
            queued.removeFirst(queueHead)
            queueHead = 0
        }
        updateInterest()
    }

    private func dispatch(_ bytes: [UInt8]) {
        let request: JSONValue
        do {
            request = try JSONParser.parse(bytes)
        } catch {
            return send(Self.errorReply(QmpError(String(error.message.prefix(200))), id: nil))
        }
        let id = request["id"]
        busy = true
        dispatching = true
        defer { dispatching = false }
        monitor.execute(request, negotiated: negotiated) { [weak self] result, negotiationDone in
            guard let self, !self.closed else { return }
            if negotiationDone { self.negotiated = true }
            switch result {
            case .success(let value):
                var members: [(String, JSONValue)] = [("return", value)]
                if let id { members.append(("id", id)) }
                self.send(.object(members))
            case .failure(let error):
                self.send(Self.errorReply(error, id: id))
            }
            self.busy = false
            if !self.dispatching { self.watcher.runSoon { [weak self] in self?.processQueued() } }
        }
    }

    static func errorReply(_ error: QmpError, id: JSONValue?) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let id { members.append(("id", id)) }
        members.append(("error", error.json))
        return .object(members)
    }

    func send(_ message: JSONValue) {
        guard !closed else { return }
        outbound += message.serializedBytes
        outbound += [0x0d, 0x0a]
        flush()
    }

    private func flush() {
        while pendingOutput > 0 && !closed {
            let written = outbound[outboundSent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if written > 0 {
                outboundSent += written
            } else if written < 0 && errno == EINTR {
                continue
            } else if written < 0 && errno == EAGAIN {
                // After its end of file, a client that does not take its answers is closed (QEMU
                // closes at end of file): waiting for writability with a half-closed socket
                // would wake the loop over and over, as the hang-up stays reported.
                if inputClosed { return close() }
                break
            } else {
                return close()
            }
        }
        if outboundSent == outbound.count {
            outbound.removeAll(keepingCapacity: outbound.capacity <= Self.outputLimit)
            outboundSent = 0
        } else if outboundSent > Self.outputLimit {
            outbound.removeFirst(outboundSent)
            outboundSent = 0
        }
        updateInterest()
    }

    /// Reads while the client is not throttled; writes while output waits; asks for a wake-up
    /// while requests wait. A client that has stopped sending is closed once it is answered.
    private func updateInterest() {
        guard !closed else { return }
        var wanted: FdInterest = []
        if wantsInput { wanted.insert(.readable) }
        if pendingOutput > 0 || (!busy && queuedCount > 0) { wanted.insert(.writable) }
        if inputClosed && wanted.isEmpty {
            if !busy && queuedCount == 0 { return close() }
            // Waiting for a command to finish: unwatched, so a half-closed socket does not
            // report its hang-up over and over.
            if interest != nil { watcher.unwatch(fd) }
            interest = nil
            return
        }
        guard wanted != interest else { return }
        if interest == nil {
            try? watcher.watch(fd, for: wanted) { [weak self] ready in self?.handle(ready) }
        } else {
            try? watcher.update(fd, interest: wanted)
        }
        interest = wanted
    }

    func close() {
        guard !closed else { return }
        closed = true
        if interest != nil { watcher.unwatch(fd) }
        Glibc.close(fd)
        monitor.sessionClosed(self)
    }
}
