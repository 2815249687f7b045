import Block
import Glibc

/// One QMP client connection: greeting, capabilities negotiation, commands in order (an
/// asynchronous command holds back the ones after it), events once negotiated. A client that
/// vanishes, even mid-command, only closes its own session.
final class QmpSession {
    private let fd: Int32
    private unowned let monitor: QmpMonitor
    private let watcher: FdWatcher
    private var splitter = JSONStreamSplitter()
    private var queued: [JSONStreamSplitter.Piece] = []
    private var busy = false
    private var outbound: [UInt8] = []
    private(set) var negotiated = false
    private(set) var closed = false

    init(fd: Int32, monitor: QmpMonitor, watcher: FdWatcher) throws(BlockError) {
        self.fd = fd
        self.monitor = monitor
        self.watcher = watcher
        try watcher.watch(fd, for: .readable) { [weak self] ready in self?.handle(ready) }
        send(monitor.greeting)
    }

    private func handle(_ ready: FdInterest) {
        if ready.contains(.writable) { flush() }
        if ready.contains(.readable) || ready.contains(.hangup) { readAvailable() }
    }

    private func readAvailable() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !closed {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                queued += splitter.feed(buffer[..<count])
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { break }
            return close()  // EOF or error: the client is gone
        }
        processQueued()
    }

    private func processQueued() {
        while !busy && !closed && !queued.isEmpty {
            let piece = queued.removeFirst()
            switch piece {
            case .tooLarge: send(Self.errorReply(QmpError("JSON token too large"), id: nil))
            case .text(let bytes): dispatch(bytes)
            }
        }
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
            self.watcher.runSoon { [weak self] in self?.processQueued() }
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
        outbound += Array((message.serialized + "\r\n").utf8)
        flush()
    }

    private func flush() {
        while !outbound.isEmpty && !closed {
            let written = outbound.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if written > 0 {
                outbound.removeFirst(written)
            } else if written < 0 && (errno == EAGAIN || errno == EINTR) {
                try? watcher.update(fd, interest: [.readable, .writable])
                return
            } else {
                return close()
            }
        }
        try? watcher.update(fd, interest: .readable)
    }

    func close() {
        guard !closed else { return }
        closed = true
        watcher.unwatch(fd)
        Glibc.close(fd)
        monitor.sessionClosed(self)
    }
}
