import Block
import Glibc
import Machine

/// The destination of a migration (QEMU's qemu_start_incoming_migration and
/// process_incoming_migration_co): listen (or start the exec: command) on the loop, then on a
/// receiver thread take the connection and load the stream into RAM; load the device state and
/// finish on the loop. A stream that cannot be loaded is refused back to the source and, as in
/// QEMU, ends this process with status 1.
final class IncomingMigration: Sendable {
    let machine: LoopBound<Machine>
    /// RAM, which the receiver thread writes directly.
    private let ram: GuestRam
    private let bitmaps: IncomingBitmaps
    let uri: MigrationUri
    /// The listening sockets (unix: one, tcp: one per address the host resolves to); none for exec:.
    private let listeners: [Int32]
    /// Where they listen, in the order they were opened (query-migrate's `socket-address`).
    let listeningOn: [BoundSocketAddress]
    private let expected: MachineDescription
    private let setStatus: @Sendable (MigrationStatus) -> Void
    /// Read on the loop when the stream is in (capabilities may change until then).
    private let lateBlockActivate: @Sendable () -> Bool

    init(machine: Machine, uri: MigrationUri, setStatus: @escaping @Sendable (MigrationStatus) -> Void,
         lateBlockActivate: @escaping @Sendable () -> Bool) throws(MigrationError) {
        self.machine = machine.loopBound
        ram = machine.ram
        bitmaps = IncomingBitmaps(machine: machine)
        self.uri = uri
        self.setStatus = setStatus
        self.lateBlockActivate = lateBlockActivate
        expected = MachineDescription.of(machine)
        switch uri {
        case .socket(let address):
            // Only the owner may connect, as to the QMP and NBD sockets.
            let opened: [(fd: Int32, bound: BoundSocketAddress)]
            do { opened = try Socket.listenAll(address, permissions: 0o600) } catch { throw MigrationError(error) }
            listeners = opened.map(\.fd)
            listeningOn = opened.map(\.bound)
        case .exec:
            listeners = []
            listeningOn = []
        }
    }

    func start() throws(MigrationError) {
        do {
            try NativeThread.start(name: "svmm-incoming") { [self] in self.receive() }
        } catch {
            closeListeners()
            throw MigrationError(error)
        }
    }

    private func open() throws(MigrationError) -> MigrationChannel {
        if case .exec(let command) = uri { return try MigrationChannel.incoming(exec: command) }
        // QEMU takes the first connection on any listener and stops listening.
        defer { closeListeners() }
        do { return MigrationChannel.accepted(try Socket.waitForConnection(on: listeners)) } catch { throw MigrationError(error) }
    }

    private func closeListeners() {
        for fd in listeners { close(fd) }
    }

    private func receive() {
        let channel: MigrationChannel
        do { channel = try open() } catch { return fail(error.description, channel: nil) }
        onLoop { $0.setStatus(.active) }
        var decoder = StreamDecoder(ChannelInput(channel: channel))
        let bitmaps = self.bitmaps
        let loaded: LoadedStream
        do {
            loaded = try StreamLoader.load(&decoder, into: MachineRam(ram: ram), bitmaps: bitmaps, expecting: expected) {
                machine.perform { $0.prepareForIncomingSwitchover() }
            }
        } catch {
            return fail(error.description, channel: channel)
        }
        // loadvm_postcopy_handle_listen: the destination is in postcopy from here.
        if loaded.postcopy { onLoop { $0.setStatus(.postcopyActive) } }
        let sections = loaded.devices.map {
            StateSection(name: $0.id.name, instanceId: $0.id.instance, version: $0.version, payload: $0.payload)
        }
        let lateBlockActivate = self.lateBlockActivate
        let setStatus = self.setStatus
        // Load, answer and run in one trip to the loop (each trip costs a thread wake-up, tens of
        // µs of the downtime on these machines). The answer goes before the VM runs: a source
        // that never hears `OK` resumes its own guest, so this one must not run before it is sent.
        let problem = LoopBridge<String?>.call(on: machine) { machine in
            do throws(MachineError) { try machine.loadState(sections) } catch { return error.description }
            if !loaded.postcopy { channel.sendVerdict("OK") }
            bitmaps.beforeVmStart()
            machine.finishIncomingMigration(sourceRunState: loaded.sourceRunState, lateBlockActivate: lateBlockActivate()) {
                Console.report($0)
            }
            if !loaded.postcopy { setStatus(.completed) }
            return nil
        }
        if let problem { return fail(problem, channel: channel) }
        if loaded.postcopy { receivePostcopyBitmaps(&decoder, into: bitmaps, channel: channel) }
        channel.close()
        _ = channel.waitForChild()
    }

    /// postcopy_ram_listen_thread with only bitmaps to postcopy: the VM runs already, so a
    /// failure here drops the unfinished bitmaps and still ends `completed`, as QEMU does.
    private func receivePostcopyBitmaps(_ decoder: inout StreamDecoder<ChannelInput>, into bitmaps: IncomingBitmaps,
                                        channel: MigrationChannel) {
        let problem: String?
        do { try StreamLoader.loadPostcopy(&decoder, bitmaps: bitmaps); problem = nil } catch { problem = error.description }
        let setStatus = self.setStatus
        _ = LoopBridge<Bool>.call(on: machine) { _ in
            let dropped = bitmaps.cancelUnfinished()
            if let problem {
                Console.report("load of migration failed during postcopy: \(problem). All states are migrated except dirty bitmaps. "
                               + "Some dirty bitmaps may be lost, and present migrated dirty bitmaps are correctly migrated and valid.")
            } else if !dropped.isEmpty {
                Console.report("migration: dirty bitmaps not completed by the source were dropped: \(dropped.joined(separator: ", "))")
            }
            setStatus(.completed)
            return true
        }
        channel.sendVerdict("OK")
    }

    private func onLoop(_ job: @escaping @Sendable (IncomingMigration) -> Void) {
        _ = LoopBridge<Bool>.call(on: machine) { [self] _ in
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
        machine.perform { _ in
            setStatus(.failed)
            Console.report("load of migration failed: \(message)")
            // Let the monitors read the event first, as QEMU's exit comes after it.
            usleep(100_000)
            exit(1)
        }
    }
}
