import Block
import Glibc
import Machine

/// The destination of a migration (QEMU's qemu_start_incoming_migration and
/// process_incoming_migration_co): listen (or start the exec: command) on the loop, then on a
/// receiver thread take the connection and load the stream into RAM; load the device state and
/// finish on the loop. A stream that cannot be loaded is refused back to the source and, as in
/// QEMU, ends this process with status 1.
final class IncomingMigration: @unchecked Sendable {  // immutable after init; the thread owns the channel
    let machine: Machine
    let uri: MigrationUri
    /// The listening socket (unix:, tcp:), or -1 for exec:.
    private let listener: Int32
    private let expected: MachineDescription
    private let setStatus: @Sendable (MigrationStatus) -> Void
    /// Read on the loop when the stream is in (capabilities may change until then).
    private let lateBlockActivate: @Sendable () -> Bool

    init(machine: Machine, uri: MigrationUri, setStatus: @escaping @Sendable (MigrationStatus) -> Void,
         lateBlockActivate: @escaping @Sendable () -> Bool) throws(MigrationError) {
        self.machine = machine
        self.uri = uri
        self.setStatus = setStatus
        self.lateBlockActivate = lateBlockActivate
        expected = MachineDescription.of(machine)
        switch uri {
        case .unix(let path): listener = try SocketAddressing.listenUnix(path)
        case .tcp(let host, let port): listener = try SocketAddressing.listenTCP(host: host, port: port)
        case .exec: listener = -1
        }
    }

    func start() throws(MigrationError) {
        do {
            try NativeThread.start(name: "svmm-incoming") { [self] in self.receive() }
        } catch {
            if listener >= 0 { close(listener) }
            throw MigrationError(error.description)
        }
    }

    private func open() throws(MigrationError) -> MigrationChannel {
        if case .exec(let command) = uri { return try MigrationChannel.incoming(exec: command) }
        defer { close(listener) }
        return MigrationChannel.accepted(try SocketAddressing.acceptOne(listener))
    }

    private func receive() {
        let channel: MigrationChannel
        do { channel = try open() } catch { return fail(error.description, channel: nil) }
        onLoop { $0.setStatus(.active) }
        var decoder = StreamDecoder(ChannelInput(channel: channel))
        let loaded: LoadedStream
        do {
            loaded = try StreamLoader.load(&decoder, into: MachineRam(machine: machine), expecting: expected)
        } catch {
            return fail(error.description, channel: channel)
        }
        let machine = self.machine
        let sections = loaded.devices.map {
            StateSection(name: $0.id.name, instanceId: $0.id.instance, version: $0.version, payload: $0.payload)
        }
        let problem = LoopBridge<String?>.call(on: machine) {
            do throws(MachineError) { try machine.loadState(sections) } catch { return error.description }
            return nil
        }
        if let problem { return fail(problem, channel: channel) }
        channel.sendVerdict("OK")
        let lateBlockActivate = self.lateBlockActivate
        let setStatus = self.setStatus
        _ = LoopBridge<Bool>.call(on: machine) {
            machine.finishIncomingMigration(sourceRunState: loaded.sourceRunState, lateBlockActivate: lateBlockActivate()) {
                Console.report($0)
            }
            setStatus(.completed)
            return true
        }
        channel.close()
        _ = channel.waitForChild()
    }

    private func onLoop(_ job: @escaping @Sendable (IncomingMigration) -> Void) {
        _ = LoopBridge<Bool>.call(on: machine) { [self] in
            job(self)
            return true
        }
    }

    /// process_incoming_migration_co's failure path: status failed, the message on stderr, exit.
    private func fail(_ message: String, channel: MigrationChannel?) {
        channel?.sendVerdict("ERR \(message)")
        channel?.drainBeforeClose(milliseconds: 2000)
        channel?.close()
        let setStatus = self.setStatus
        machine.onLoop {
            setStatus(.failed)
            Console.report("load of migration failed: \(message)")
            // Let the monitors read the event first, as QEMU's exit comes after it.
            usleep(100_000)
            exit(1)
        }
    }
}
