import Block
import CKVM
import Devices
import Glibc
import KVM
import NBD

/// A configured x86 virtual machine: KVM objects, guest RAM, devices, the event loop and the vCPU.
public final class Machine {
    public let config: MachineConfig
    let vm: VirtualMachine
    let memory: GuestMemory
    let loop: EventLoop
    let aio: AioContext
    /// Started on first use: only `aio=threads` nodes need it.
    private var threadPool: ThreadPoolIo?
    public let graph = BlockGraph()
    /// NBD connections negotiated off the loop for the blockdev-add that is opening now.
    private var negotiatedNbd: [NbdConnection] = []
    /// blockdev-adds waiting for their NBD handshakes, by number.
    private var pendingOpens: [Int: (BlockdevOptions, (Result<Void, BlockError>) -> Void)] = [:]
    private var nextOpen = 0
    /// BlockBackends by name: `-drive` ids.
    private(set) var namedBackends: [String: BlockBackend] = [:]
    private(set) var deviceBackends: [BlockBackend] = []
    private(set) var transports: [(UInt64, VirtioMmioTransport)] = []
    /// The loop's side of the vCPU thread (which owns the vCPU and the port devices).
    var vcpuControl: VcpuControl?
    /// The busy-poll group of each `-object iothread` a device names (Machine+Polling.swift).
    var pollGroups: [String: LoopPollGroup] = [:]
    /// Set by `loadState`: the restored queues are looked at once the VM resumes (a kick the
    /// source took but did not act on is not lost).
    var kickQueuesOnResume = false
    /// The KVM memory slot of guest RAM.
    static let ramSlot: UInt32 = 0
    private let serialFd: Int32?
    /// Loop-thread state from here on.
    public private(set) var runState: RunState
    /// QEMU's autostart: run once an incoming migration is in (no `-S`; `cont`/`stop` during
    /// `inmigrate` set and clear it).
    public internal(set) var autostart: Bool
    public var onEvent: ((MachineEvent) -> Void)?
    /// Opens `-blockdev`/`blockdev-add` nodes; the NBD layer plugs in its client here.
    public private(set) var opener: BlockNodeOpener!

    public init(config: MachineConfig) throws(MachineError) {
        self.config = config
        runState = config.incoming != nil ? .inmigrate : config.startPaused ? .prelaunch : .running
        autostart = !config.startPaused
        guard config.memorySize >= 2 << 20, config.memorySize <= MemoryMap.ramLimit else {
            throw MachineError("-m: memory size must be between 2 MiB and \(MemoryMap.ramLimit >> 20) MiB")
        }
        serialFd = try Self.openSerial(config.serial)
        do {
            let kvm = try Kvm()
            vm = try kvm.createVirtualMachine()
            try vm.setIdentityMapAddress(MemoryMap.kvmIdentityMap)
            try vm.setTSSAddress(MemoryMap.kvmTSS)
            try vm.createIRQChip()
            try vm.createPIT2()
            memory = try GuestMemory(size: Int(config.memorySize))
            try vm.mapMemory(memory, slot: Self.ramSlot)
        } catch {
            throw MachineError(error, context: "failed to initialize kvm")
        }
        do { loop = try EventLoop() } catch { throw MachineError(error) }
        do { aio = try AioContext() } catch { throw MachineError(error) }
        do { try loop.watch(eventFd: aio.eventFd, blockLayer: true) { [aio] in aio.processCompletions() } } catch { throw MachineError(error) }
        try openBlockNodes()
        try createVirtioBlkDevices()
    }

    private static func openSerial(_ output: MachineConfig.SerialOutput) throws(MachineError) -> Int32? {
        switch output {
        case .stdio: return STDOUT_FILENO
        case .none: return nil
        case .file(let path):
            let fd = ckvm_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw MachineError("-serial file:\(path): Could not open '\(path)': \(String(cString: strerror(errno)))") }
            return fd
        }
    }

    private func openBlockNodes() throws(MachineError) {
        graph.runSoon = { [unowned self] job in self.loop.runSoon(job) }
        opener = BlockNodeOpener(graph: graph) { [unowned self] mode throws(BlockError) in try self.engine(for: mode) }
        opener.opensInactive = config.incoming != nil
        opener.nbdConnector = { [unowned self] options throws(BlockError) in
            if let index = negotiatedNbd.firstIndex(where: { $0.options == options }) {
                return try NbdClientDriver.adopt(negotiatedNbd.remove(at: index), watcher: self.loop)
            }
            return try NbdClientDriver.connect(options, watcher: self.loop)
        }
        for blockdev in config.blockdevs {
            do { try opener.open(blockdev.options) } catch { throw MachineError(error, context: "-blockdev \(blockdev.source)") }
        }
        for drive in config.drives {
            do {
                let node = try opener.open(drive.options, autoName: true)
                let backend = BlockBackend(graph: graph, name: drive.id, perm: [], shared: .all)
                backend.onReadError = drive.readErrorPolicy
                backend.onWriteError = drive.writeErrorPolicy
                try backend.insert(node)
                namedBackends[drive.id] = backend
            } catch {
                throw MachineError(error, context: "-drive \(drive.source)")
            }
        }
    }

    /// The backend a device's `drive=` names: a `-drive` id, or a node for a new anonymous backend.
    private func backend(forDrive name: String) throws(BlockError) -> BlockBackend {
        if let named = namedBackends[name] { return named }
        guard let node = graph.node(named: name) else {
            throw BlockError("Property 'virtio-blk-device.drive' can't find value '\(name)'")
        }
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        return backend
    }

    private func engine(for mode: FileOptions.AioMode) throws(BlockError) -> FileIoEngine {
        if mode == .native { return aio }
        if let threadPool { return threadPool }
        let pool = try ThreadPoolIo()
        do { try loop.watch(eventFd: pool.eventFd, blockLayer: true) { [pool] in pool.processCompletions() } } catch { throw BlockError(error.description) }
        threadPool = pool
        return pool
    }

    private func createVirtioBlkDevices() throws(MachineError) {
        for (slot, device) in config.virtioBlkDevices.enumerated() {
            let backend: BlockBackend
            do {
                try checkIothread(device)
                backend = try self.backend(forDrive: device.drive)
                let deviceName = device.id ?? "/machine/peripheral-anon/device[\(slot)]"
                try VirtioBlk.claim(backend, deviceName: deviceName, shareRW: device.shareRW, incomingMigration: runState == .inmigrate)
            } catch {
                throw MachineError(error, context: "\(device.option) \(device.source)")
            }
            deviceBackends.append(backend)
            applyErrorPolicy(device, to: backend)
            let blk = VirtioBlk(backend: backend, memory: memory, serial: device.serial, id: device.id)
            blk.vmStateChanged(running: runState == .running)
            let address = MemoryMap.virtioMmioAddress(slot: slot)
            do {
                let transport = try VirtioMmioTransport(device: blk, memory: memory)
                // Kicks bypass user space entirely: the kernel signals the eventfd, the loop processes the queue.
                try vm.registerIoEventFd(transport.notifyEventFd, mmioAddress: address + 0x50, length: 4)
                try vm.registerIrqFd(transport.interruptEventFd, gsi: MemoryMap.virtioFirstIrq + UInt32(slot))
                try loop.watch(eventFd: transport.notifyEventFd.fd) { [transport] in transport.notify(queue: 0) }
                transports.append((address, transport))
                addPolling(device, blk, transport)
            } catch {
                throw MachineError(error, context: "virtio-blk-device")
            }
        }
    }

    /// The command line the guest sees: `-append` plus QEMU microvm's `virtio_mmio.device=` entries.
    var guestCommandLine: String {
        let entries = transports.enumerated().map { slot, entry in
            "virtio_mmio.device=512@0x\(String(entry.0, radix: 16)):\(MemoryMap.virtioFirstIrq + UInt32(slot))"
        }
        return ([config.append] + entries).filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// Loads the kernel, prepares the boot vCPU and starts the event loop and (unless `-S`) the guest.
    /// `incoming`: for a migration destination: no kernel is loaded and the vCPU gets no boot
    /// state (`loadState` and the RAM from the stream replace both); it stays parked until `cont`.
    public func start(incoming: Bool = false, onStop: @escaping @Sendable (String, Int32) -> Void) throws(MachineError) {
        if config.accelerator == .qtest { return try startWithoutGuest(onStop: onStop) }
        if incoming { return try startIncoming(onStop: onStop) }
        guard let kernel = config.kernel else { throw MachineError("no kernel given: use -kernel FILE") }
        let image = try ElfImage(bytes: try Self.readFile(kernel), name: kernel)
        var tree = DeviceTree(memorySize: config.memorySize, bootArguments: guestCommandLine, hasSerial: serialFd != nil)
        tree.virtioNodes = transports.enumerated().map { slot, entry in
            .init(address: entry.0, size: VirtioMmioTransport.windowSize, irq: MemoryMap.virtioFirstIrq + UInt32(slot))
        }
        let boot = try PvhBoot(image: image, commandLine: guestCommandLine, fdt: try tree.build(), memory: memory, kernelName: kernel)
        let vcpu = try BootVcpu.create(vm: vm, boot: boot)
        try startVcpu(vcpu, startPaused: runState != .running, runsGuest: true, onStop: onStop)
    }

    private func startIncoming(onStop: @escaping @Sendable (String, Int32) -> Void) throws(MachineError) {
        runState = .inmigrate  // as QEMU starts with -incoming: `cont` (or the migration's end) leaves it
        let vcpu = try BootVcpu.createForIncoming(vm: vm)
        try startVcpu(vcpu, startPaused: true, runsGuest: true, onStop: onStop)
    }

    /// `-accel qtest` (QEMU's qtest machine): no kernel is loaded and the vCPU never enters the
    /// guest; its thread stays parked, answering state requests, so run states, migration (of RAM
    /// and the vCPU's reset state), devices and the block layer work as with a guest.
    private func startWithoutGuest(onStop: @escaping @Sendable (String, Int32) -> Void) throws(MachineError) {
        let vcpu = try BootVcpu.createForIncoming(vm: vm)
        try startVcpu(vcpu, startPaused: true, runsGuest: false, onStop: onStop)
    }

    /// Starts the loop thread, then the vCPU's, which takes the vCPU and the port devices with it:
    /// the machine keeps only the loop's side of it (`vcpuControl`).
    private func startVcpu(_ vcpu: sending Vcpu, startPaused: Bool, runsGuest: Bool,
                           onStop: @escaping @Sendable (String, Int32) -> Void) throws(MachineError) {
        let name = "svmm-vcpu\(vcpu.id)"
        let control = VcpuControl(runPage: vcpu.runPage, loop: loop, startPaused: startPaused, runsGuest: runsGuest)
        let msrs: [UInt32]
        do { msrs = try vm.kvm.msrIndexList() } catch { throw MachineError(error, context: "cpu 0") }
        let layout = VcpuStateLayout(msrCandidates: msrs, hasXsave: vm.kvm.checkExtension(KVM_CAP_XSAVE) > 0,
                                     hasXcrs: vm.kvm.checkExtension(KVM_CAP_XCRS) > 0)
        let runner = VcpuRunner(vcpu: vcpu, ports: Self.vcpuPorts(serialFd: serialFd, debugExitPort: config.debugExitPort, onStop: onStop), transports: transports.map { ($0.0, bind($0.1)) },
                                control: control, layout: layout, onStop: onStop)
        vcpuControl = control
        do { try loop.start() } catch { throw MachineError(error) }
        try VcpuRunner.start(runner, name: name)
    }

    /// The machine for a thread that hands work back to the loop, which owns the machine's state
    /// once started (the Machine is not Sendable: this checked wrapper is the only way across).
    public var loopBound: LoopBound<Machine> { bind(self) }

    /// `value`, which belongs to this machine's loop, for a thread that hands it back there.
    public func bind<Value>(_ value: Value) -> LoopBound<Value> { LoopBound(value, loop: loop) }

    /// RAM and the dirty log, which a migration thread reads and writes directly.
    public var ram: GuestRam { GuestRam(vm: vm, memory: memory, slot: Self.ramSlot) }

    public var eventLoop: FdWatcher { loop }

    /// `blockdev-add` (on the loop thread): NBD client nodes in the options are connected and
    /// negotiated on a thread of their own first, so the loop is not held up by a slow server;
    /// then the nodes open on the loop, with those connections.
    public func openBlockdev(_ options: BlockdevOptions, completion: @escaping (Result<Void, BlockError>) -> Void) {
        let clients = options.nbdClients
        guard !clients.isEmpty else {
            return completion(Result { () throws(BlockError) in try opener.open(options) }.map { _ in })
        }
        nextOpen += 1
        let id = nextOpen
        pendingOpens[id] = (options, completion)
        let machine = LoopBound(self, loop: loop)
        do {
            try NativeThread.start(name: "svmm-nbd-connect") { @Sendable in
                let result = Self.negotiateAll(clients)
                machine.perform { $0.finishOpen(id, with: result) }
            }
        } catch {
            pendingOpens[id] = nil
            completion(.failure(BlockError(error)))
        }
    }

    /// The handshakes, one after the other; on a failure the ones done are closed.
    private static func negotiateAll(_ clients: [NbdClientOptions]) -> Result<[NbdConnection], BlockError> {
        var connections: [NbdConnection] = []
        for client in clients {
            do throws(BlockError) {
                connections.append(try NbdClientDriver.negotiate(client))
            } catch {
                connections.forEach { $0.close() }
                return .failure(error)
            }
        }
        return .success(connections)
    }

    private func finishOpen(_ id: Int, with connections: Result<[NbdConnection], BlockError>) {
        guard let (options, completion) = pendingOpens.removeValue(forKey: id) else { return }
        switch connections {
        case .failure(let error): completion(.failure(error))
        case .success(let negotiated):
            negotiatedNbd = negotiated
            defer {
                negotiatedNbd.forEach { $0.close() }  // opening failed before it used them
                negotiatedNbd = []
            }
            completion(Result { () throws(BlockError) in try opener.open(options) }.map { _ in })
        }
    }

    // MARK: run state (loop thread)

    public var isRunning: Bool { runState == .running }

    /// runstate_set: every change of run state goes through QEMU's transition table.
    func changeRunState(to next: RunState) throws(MachineError) {
        guard runState.canChange(to: next) else {
            throw MachineError("invalid runstate transition: '\(runState.rawValue)' -> '\(next.rawValue)'")
        }
        runState = next
    }

    /// QMP `cont` (QEMU's qmp_cont, with the 2017 promise kept): images are activated, then every
    /// guest device applies the permissions it recorded during incoming migration; if one cannot,
    /// `cont` fails with that conflict and the VM stays paused.
    public func cont() throws(MachineError) {
        if runState.needsReset { throw MachineError("Resetting the Virtual Machine is required") }
        if runState == .finishMigrate { throw MachineError("Migration is not finalized yet") }
        resetIoStatus()
        do { try graph.activateAll() } catch { throw MachineError(error) }
        // The seed's qmp_cont applies the recorded permissions before it looks at the run state:
        // a `cont` during an incoming migration with a writable export in place fails with the
        // conflict and arms nothing (QEMU 7.2 arms autostart there and succeeds).
        do {
            for backend in deviceBackends + namedBackends.values { try backend.resumeAfterMigration() }
        } catch {
            throw MachineError(error)
        }
        // qmp_cont during an incoming migration: the VM starts when the stream is in.
        // (Once loadState has put a stream's state in, `cont` starts the VM: an in-process restore.)
        if runState == .inmigrate && !kickQueuesOnResume { autostart = true; return }
        guard runState != .running else { return }
        try changeRunState(to: .running)
        vcpuControl?.resume()
        onEvent?(.resume)
        notifyVmState(running: true)  // failed requests retried, queues looked at (Machine+Stop)
    }

    /// Made for the vCPU thread, which owns them from then on (their state goes through its
    /// requests): static, so the compiler sees that nothing of the machine keeps them.
    private static func vcpuPorts(serialFd: Int32?, debugExitPort: UInt16?,
                                  onStop: @escaping @Sendable (String, Int32) -> Void) -> VcpuPorts {
        let serial = Serial16550(outputFd: serialFd)
        let debugExit = debugExitPort.map { port in DebugExit(iobase: port) { status in onStop("", status) } }
        var ports = VcpuPorts(serial: serial, debugExit: debugExit)
        ports.bus.add(serial, base: Serial16550.defaultBase, count: Serial16550.portCount)
        if let debugExit, let debugExitPort { ports.bus.add(debugExit, base: debugExitPort, count: 1) }
        return ports
    }

    static func readFile(_ path: String) throws(MachineError) -> [UInt8] {
        let fd = ckvm_open(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { throw MachineError("could not open kernel file '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw MachineError("reading '\(path)': \(String(cString: strerror(errno)))") }
            if count == 0 { return bytes }
            bytes += chunk.prefix(count)
        }
    }
}
