import Block
import Glibc
import Loop

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

    /// The connection: Loop's buffered channel holds what the client has not taken yet and
    /// watches the socket (input while the session is not throttled, writability while output
    /// waits or a turn is wanted, nothing once the client has finished sending and all is sent).
    private let channel: SocketChannel
    private unowned let monitor: QmpMonitor
    private let watcher: FdWatcher
    private var splitter = JSONStreamSplitter()
    /// Pieces waiting for dispatch, from `queueHead` on (an index, not removeFirst per piece).
    private var queued: [JSONStreamSplitter.Piece] = []
    private var queueHead = 0
    private var busy = false
    /// True while `monitor.execute` runs: a command that answers at once needs no wake-up.
    private var dispatching = false
    private(set) var negotiated = false
    private(set) var closed = false

    init(fd: Int32, monitor: QmpMonitor, watcher: FdWatcher) throws(SystemCallError) {
        self.monitor = monitor
        self.watcher = watcher
        channel = try SocketChannel(fd: fd, watcher: watcher, blockLayer: false, inputCapacity: Self.readChunk)
        channel.onReadable = { [weak self] in self?.readChunk() }
        // The client's end of file, seen while throttled: what it sent still gets its answers.
        channel.onEndOfInput = { [weak self] in self?.takeBuffered() }
        channel.onTurn = { [weak self] in self?.processQueued() }
        channel.onDrained = { [weak self] in self?.processQueued() }
        channel.onClosed = { [weak self] _ in self?.channelClosed() }
        send(monitor.greeting)
    }

    private var pendingOutput: Int { channel.pendingOutputBytes }
    private var queuedCount: Int { queued.count - queueHead }

    private var wantsInput: Bool {
        pendingOutput < Self.outputLimit && queuedCount < Self.queueLimit
    }

    /// One bounded read (the channel's input holds `readChunk` bytes); level-triggered
    /// readiness brings the session back for the rest. A read error closes the session; the
    /// end of file only stops reading (the channel notes it).
    private func readChunk() {
        if channel.input.count == 0, case .closed(let reason)? = channel.fillOnce(), !channel.inputEnded {
            return channel.close(reason: reason)
        }
        takeBuffered()
    }

    /// Splits what the channel has buffered into requests and dispatches them.
    private func takeBuffered() {
        let count = channel.input.count
        if count > 0 {
            queued += channel.input.withUnreadBytes { splitter.feed($0) }
            _ = channel.input.skip(count)
        }
        processQueued()
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
        channel.send(message.serializedBytes + [0x0d, 0x0a])
        updateInterest()
    }

    /// Reads while the client is not throttled; asks for a turn while requests wait. A client
    /// that has stopped sending is closed once it is answered (QEMU closes at end of file).
    private func updateInterest() {
        guard !closed else { return }
        if channel.inputEnded && !busy && queuedCount == 0 && pendingOutput == 0 { return close() }
        channel.wantsInput = wantsInput
        channel.wantsTurn = !busy && queuedCount > 0
    }

    func close() {
        guard !closed else { return }
        channel.close(reason: "closed by the monitor")
    }

    /// The channel closed (by `close`, or a write the client refused): the session ends once.
    private func channelClosed() {
        guard !closed else { return }
        closed = true
        monitor.sessionClosed(self)
    }
}
