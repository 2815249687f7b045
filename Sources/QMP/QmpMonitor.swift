import Block
import Glibc
import Machine
import Migration
import NBD

/// The QMP monitor: listening sockets, client sessions, the command table and events.
/// Lives on the machine's event-loop thread.
public final class QmpMonitor {
    public let machine: Machine
    var commands: [String: QmpCommand] = [:]
    private var listeners: [QmpListener] = []
    private var sessions: [QmpSession] = []
    /// The built-in NBD server (`nbd-server-start`) and the exports' ids (`block-export-add`).
    var nbdServer: NbdServer?
    var exportIDs: [ObjectIdentifier: String] = [:]
    /// Live migration: capabilities, parameters, the outgoing and incoming migrations.
    public let migration: MigrationController
    /// HMP's qemu-io (`human-monitor-command`), with its aio requests.
    let qemuIo = QemuIoRunner()

    public init(machine: Machine) {
        self.machine = machine
        migration = MigrationController(machine: machine)
        for command in coreCommands() + blockCommands() + bitmapCommands() + nbdCommands() + migrationCommands() { commands[command.name] = command }
        migration.onEvent = { [unowned self] event in self.emit(event) }
        for command in jobCommands() + mirrorCommands() { commands[command.name] = command }
        machine.graph.jobs.onEvent = { [unowned self] event in self.emitJobEvent(event) }
        machine.onEvent = { [unowned self] event in self.emit(event) }
        machine.graph.onImageCorrupted = { [unowned self] node, report in self.emitImageCorrupted(node, report) }
        for command in backendCommands() { commands[command.name] = command }
        for command in hmpCommands() { commands[command.name] = command }
        for command in blockstatsCommands() { commands[command.name] = command }
        for command in sandboxDebugCommands() { commands[command.name] = command }
    }

    /// Starts listening (`-qmp unix:PATH,server=on,wait=off`); call before the machine starts.
    public func listen(_ address: SocketAddress) throws(QmpError) {
        let listener = try QmpListener(address: address)
        listeners.append(listener)
        do {
            try machine.eventLoop.watch(listener.fd, for: .readable) { [unowned self] _ in
                let (clients, outOfDescriptors) = listener.acceptAll()
                for client in clients { self.open(client) }
                // A connection that cannot be accepted keeps the socket readable: stop watching
                // until a session closes and frees a descriptor, or the loop would spin on it.
                if outOfDescriptors { try? self.machine.eventLoop.update(listener.fd, interest: []) }
            }
        } catch {
            throw QmpError(error)
        }
    }

    /// Serves QMP on a socket svmm connected to (`-chardev socket,path=P` without `server=on`, or
    /// `fd=N`): one session, greeted at once, as QEMU's monitor on a client chardev.
    public func attach(connected fd: Int32) throws(QmpError) {
        do {
            sessions.append(try QmpSession(fd: fd, monitor: self, watcher: machine.eventLoop))
        } catch {
            throw QmpError(error)
        }
    }

    private func open(_ fd: Int32) {
        do {
            sessions.append(try QmpSession(fd: fd, monitor: self, watcher: machine.eventLoop))
        } catch {
            close(fd)
        }
    }

    func sessionClosed(_ session: QmpSession) {
        sessions.removeAll { $0 === session }
        for listener in listeners { try? machine.eventLoop.update(listener.fd, interest: .readable) }
    }

    var greeting: JSONValue {
        .object([("QMP", .object([("version", Self.version), ("capabilities", .array([]))]))])
    }

    /// svmm follows QEMU 7.2's QMP; it says so, with its own package name.
    static let version = JSONValue.object([
        ("qemu", .object([("micro", .int(0)), ("minor", .int(2)), ("major", .int(7))])),
        ("package", .string("svmm")),
    ])

    // MARK: dispatch

    /// Checks a request as QEMU's qmp_dispatch does and runs it. `reply` gets the result and
    /// whether capabilities negotiation just completed.
    func execute(_ request: JSONValue, negotiated: Bool, reply: @escaping (Result<JSONValue, QmpError>, Bool) -> Void) {
        let name: String
        let arguments: JSONValue
        do {
            (name, arguments) = try Self.parseRequest(request)
        } catch {
            return reply(.failure(error), false)
        }
        if !negotiated {
            guard name == "qmp_capabilities" else {
                return reply(.failure(QmpError("Expecting capabilities negotiation with 'qmp_capabilities'", class: .commandNotFound)), false)
            }
            do {
                try Self.checkCapabilities(arguments)
                return reply(.success(.emptyObject), true)
            } catch {
                return reply(.failure(error), false)
            }
        }
        if name == "qmp_capabilities" {
            return reply(.failure(QmpError("Capabilities negotiation is already complete, command ignored", class: .commandNotFound)), false)
        }
        guard let command = commands[name] else {
            return reply(.failure(QmpError("The command \(name) has not been found", class: .commandNotFound)), false)
        }
        do {
            let checked = try QmpArguments(arguments, schema: command.schema)
            command.run(checked) { reply($0, false) }
        } catch {
            reply(.failure(error), false)
        }
    }

    static func parseRequest(_ request: JSONValue) throws(QmpError) -> (String, JSONValue) {
        guard case .object(let members) = request else { throw QmpError("QMP input must be a JSON object") }
        var name: String?
        var arguments = JSONValue.emptyObject
        for (key, value) in members {
            switch key {
            case "execute", "exec-oob":
                guard let text = value.stringValue else { throw QmpError("QMP input member '\(key)' must be a string") }
                if key == "exec-oob" { throw QmpError("QMP input member 'exec-oob' is unexpected: out-of-band execution is not offered") }
                name = text
            case "arguments":
                guard case .object = value else { throw QmpError("QMP input member 'arguments' must be an object") }
                arguments = value
            case "id":
                break
            default:
                throw QmpError("QMP input member '\(key)' is unexpected")
            }
        }
        guard let name else { throw QmpError("QMP input lacks member 'execute'") }
        return (name, arguments)
    }

    private static func checkCapabilities(_ arguments: JSONValue) throws(QmpError) {
        _ = try QmpArguments(arguments, schema: [.optional("enable", .array)])
        if case .array(let wanted)? = arguments["enable"], let first = wanted.first {
            throw QmpError("Capability '\(first.stringValue ?? "?")' not available")
        }
    }

    // MARK: events

    /// Sends an event to every negotiated client, with QEMU's timestamp.
    public func emit(_ name: String, data: JSONValue? = nil) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var members: [(String, JSONValue)] = [
            ("timestamp", .object([("seconds", .int(Int64(now.tv_sec))), ("microseconds", .int(Int64(now.tv_nsec / 1000)))])),
            ("event", .string(name)),
        ]
        if let data { members.append(("data", data)) }
        for session in sessions where session.negotiated { session.send(.object(members)) }
    }

    /// qcow2_signal_corruption's event: `device` is the named BlockBackend's name or "".
    func emitImageCorrupted(_ node: BlockNode, _ report: Qcow2CorruptionReport) {
        let device = node.parents.lazy.compactMap { ($0.parent as? BlockBackend)?.name }.first ?? ""
        var data: [(String, JSONValue)] = [("device", .string(device)), ("node-name", .string(node.nodeName)),
                                           ("msg", .string(report.message))]
        if let offset = report.offset { data.append(("offset", .int(offset))) }
        if let size = report.size { data.append(("size", .int(size))) }
        data.append(("fatal", .bool(report.fatal)))
        emit("BLOCK_IMAGE_CORRUPTED", data: .object(data))
    }

    func emit(_ event: MachineEvent) {
        switch event {
        case .stop: emit("STOP")
        case .resume: emit("RESUME")
        case .shutdown(let guest, let reason): emit("SHUTDOWN", data: .object([("guest", .bool(guest)), ("reason", .string(reason))]))
        case .blockIoError(let report): emitBlockIoError(report)
        }
    }
}
