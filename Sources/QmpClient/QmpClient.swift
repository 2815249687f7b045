import QmpJSON

/// A synchronous QMP client, as a tool that drives a VMM step by step needs it (QEMU's
/// python/qemu/qmp legacy client): it reads the greeting, negotiates with `qmp_capabilities`,
/// sends one command at a time with an `id` and waits for its answer, and keeps the events that
/// arrive meanwhile in a queue for `waitForEvent` / `takeEvents`.
///
/// Not Sendable: one caller drives it from one thread.
public final class QmpClient {
    public let address: QmpAddress
    /// The greeting's `QMP` member: `version`, `capabilities`.
    public private(set) var greeting: JSONValue = .emptyObject
    private let socket: QmpSocket
    private var splitter = JSONStreamSplitter()
    private var messages: [JSONValue] = []
    private var events: [QmpEvent] = []
    private var nextId: Int64 = 1

    /// Connects, reads the greeting and leaves capability negotiation, all within `timeout`.
    public init(connectingTo address: QmpAddress, timeout: Double = 10) throws(QmpClientError) {
        self.address = address
        let deadline = Deadline(secondsFromNow: timeout)
        socket = try QmpSocket(connectingTo: address, timeout: timeout)
        let hello = try nextMessage(until: deadline, waitingFor: "the QMP greeting")
        guard let body = hello["QMP"] else {
            throw .protocolViolation(address: address.description, reason: "expected a greeting, got \(hello.serialized.prefix(200))")
        }
        greeting = body
        _ = try execute("qmp_capabilities", timeout: deadline.remaining)
    }

    public func close() { socket.close() }

    /// The VMM's version as `major.minor.micro` from the greeting (QEMU's `version.qemu`).
    public var version: String {
        let qemu = greeting["version"]?["qemu"]
        let parts = ["major", "minor", "micro"].map { qemu?[$0]?.intValue.map(String.init) ?? "?" }
        return parts.joined(separator: ".")
    }

    /// Runs one command; returns its `return` value or throws `commandFailed` with the error's
    /// class and desc exactly as the VMM sent them.
    @discardableResult
    public func execute(_ command: String, _ arguments: JSONValue? = nil, timeout: Double = 30) throws(QmpClientError) -> JSONValue {
        let id = nextId
        nextId += 1
        var request: [(String, JSONValue)] = [("execute", .string(command))]
        if let arguments { request.append(("arguments", arguments)) }
        request.append(("id", .int(id)))
        try socket.write(JSONValue.object(request).serializedBytes + [0x0a])
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            let reply = try nextMessage(until: deadline, waitingFor: "the answer to \(command)")
            if let event = QmpEvent(message: reply) {
                events.append(event)
                continue
            }
            guard reply["id"] == .int(id) else { continue }
            if let result = reply["return"] { return result }
            if let error = reply["error"] {
                throw .commandFailed(command: command, errorClass: error["class"]?.stringValue ?? "GenericError",
                                     desc: error["desc"]?.stringValue ?? "")
            }
            throw .protocolViolation(address: address.description, reason: "a reply without return or error: \(reply.serialized.prefix(200))")
        }
    }

    /// The first queued or arriving event named `name` for which `matching` holds; the events
    /// before it stay queued in order (a later wait may want them), the one returned is removed.
    public func waitForEvent(_ name: String, matching: (JSONValue) -> Bool = { _ in true },
                             timeout: Double) throws(QmpClientError) -> QmpEvent {
        let deadline = Deadline(secondsFromNow: timeout)
        while true {
            if let index = events.firstIndex(where: { $0.name == name && matching($0.data) }) {
                return events.remove(at: index)
            }
            try receive(until: deadline, waitingFor: "event \(name)")
        }
    }

    /// Every event received so far (reading what the socket holds without waiting), oldest first;
    /// the queue is emptied.
    public func takeEvents() throws(QmpClientError) -> [QmpEvent] {
        try pump(timeout: 0)
        defer { events.removeAll() }
        return events
    }

    /// Reads whatever arrives within `timeout` into the queues (events) without blocking past it.
    public func pump(timeout: Double) throws(QmpClientError) {
        let bytes = try socket.read(timeout: timeout)
        try split(bytes)
        while !messages.isEmpty {
            let message = messages.removeFirst()
            if let event = QmpEvent(message: message) { events.append(event) }
        }
    }

    /// Reads until at least one more message (an event or not) is queued.
    private func receive(until deadline: Deadline, waitingFor what: String) throws(QmpClientError) {
        let message = try nextMessage(until: deadline, waitingFor: what)
        if let event = QmpEvent(message: message) { events.append(event) }
    }

    private func nextMessage(until deadline: Deadline, waitingFor what: String) throws(QmpClientError) -> JSONValue {
        while messages.isEmpty {
            if deadline.hasPassed {
                throw .timedOut(address: address.description, waitingFor: what, seconds: deadline.seconds)
            }
            try split(try socket.read(timeout: min(deadline.remaining, 1)))
        }
        return messages.removeFirst()
    }

    private func split(_ bytes: [UInt8]) throws(QmpClientError) {
        guard !bytes.isEmpty else { return }
        for piece in splitter.feed(bytes) {
            guard case .text(let text) = piece else {
                throw .protocolViolation(address: address.description, reason: piece.errorMessage ?? "bad JSON")
            }
            let value: JSONValue
            do { value = try JSONParser.parse(text) } catch {
                throw .protocolViolation(address: address.description, reason: error.message)
            }
            guard case .object = value else {
                throw .protocolViolation(address: address.description, reason: "a message that is not a JSON object")
            }
            messages.append(value)
        }
    }
}
