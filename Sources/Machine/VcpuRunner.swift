import Block
import CKVM
import Devices
import Glibc
import KVM
import Synchronization

/// The loop of one vCPU thread: enter the guest, hand each exit to the device that owns it,
/// enter again. Port I/O (serial, debug-exit) is answered here; virtio-mmio register accesses go
/// to the event loop, which owns the devices.
final class VcpuRunner: @unchecked Sendable {
    private struct Control {
        var pauseRequested: Bool
        var paused = false
        /// A request for the parked thread, and its answer (see `perform`).
        var request: VcpuRequest?
        var response: VcpuResponse?
        /// The vCPU thread, once it runs (the loop signals it to leave KVM_RUN).
        var thread: pthread_t?
    }

    private let vcpu: Vcpu
    private let control: Mutex<Control>
    private let resumed: UnsafeMutablePointer<sem_t>
    private let ports: PortBus
    /// The devices' MMIO windows: the transports belong to the loop, so an exit hands its access there.
    private let transports: [(base: UInt64, transport: LoopBound<VirtioMmioTransport>)]
    private let loop: EventLoop
    private let onStop: @Sendable (String, Int32) -> Void
    /// False under `-accel qtest`: the thread stays parked for good (resume leaves it there).
    private let runsGuest: Bool

    init(vcpu: Vcpu, ports: PortBus, transports: [(UInt64, VirtioMmioTransport)], loop: EventLoop, startPaused: Bool,
         runsGuest: Bool = true, onStop: @escaping @Sendable (String, Int32) -> Void) {
        self.vcpu = vcpu
        self.runsGuest = runsGuest
        control = Mutex(Control(pauseRequested: startPaused))
        resumed = .allocate(capacity: 1)
        sem_init(resumed, 0, 0)
        VcpuKick.installHandler()
        self.ports = ports
        self.transports = transports.map { (base: $0.0, transport: LoopBound($0.1, loop: loop)) }
        self.loop = loop
        self.onStop = onStop
    }

    func start() throws(MachineError) {
        do {
            try NativeThread.start(name: "svmm-vcpu\(vcpu.id)") { [self] in
                VcpuKick.unblockOnThisThread()
                self.control.withLock { $0.thread = pthread_self() }
                self.run()
            }
        } catch {
            throw MachineError(error.description)
        }
    }

    /// Takes the vCPU out of the guest and keeps it out; returns once it is parked. Called on the
    /// loop thread, which keeps serving the vCPU's pending MMIO hand-offs meanwhile.
    func pause() {
        let thread = control.withLock { state -> pthread_t? in
            state.pauseRequested = true
            return state.thread
        }
        vcpu.requestImmediateExit(true)
        if let thread { pthread_kill(thread, VcpuKick.signal) }
        // Blocks until the vCPU says it is parked, running its MMIO hand-offs meanwhile: no spinning.
        while !control.withLock({ $0.paused }) {
            loop.waitForJobs(timeoutMilliseconds: 50)
        }
    }

    func resume() {
        guard runsGuest else { return }
        let wasPaused = control.withLock { state -> Bool in
            state.pauseRequested = false
            return state.paused
        }
        if wasPaused { sem_post(resumed) }
    }

    /// Runs `request` on the parked vCPU thread and returns its answer. Called on the loop thread,
    /// which blocks on its job eventfd until the vCPU thread wakes it (as `pause` does): no spinning.
    /// A vCPU asked to pause (`pause`, or started paused for `-S` or an incoming migration) that
    /// has not parked yet is waited for.
    func perform(_ request: VcpuRequest) -> VcpuResponse {
        while true {
            let (parked, parking) = control.withLock { state -> (Bool, Bool) in
                guard state.paused, state.request == nil else { return (false, state.pauseRequested) }
                state.request = request
                state.response = nil
                return (true, true)
            }
            if parked { break }
            guard parking else { return .notParked }
            loop.waitForJobs(timeoutMilliseconds: 50)
        }
        sem_post(resumed)
        while true {
            if let response = control.withLock({ state -> VcpuResponse? in
                defer { if state.response != nil { state.response = nil } }
                return state.response
            }) {
                return response
            }
            loop.waitForJobs(timeoutMilliseconds: 50)
        }
    }

    private func parkIfRequested() {
        guard control.withLock({ $0.pauseRequested }) else { return }
        control.withLock { $0.paused = true }
        loop.wake()
        while true {
            while sem_wait(resumed) != 0 {}
            let (stillPaused, request) = control.withLock { state -> (Bool, VcpuRequest?) in
                if let request = state.request { return (true, request) }
                if !state.pauseRequested { state.paused = false }
                return (state.pauseRequested, nil)
            }
            if let request {
                let response = answer(request)
                control.withLock { state in
                    state.request = nil
                    state.response = response
                }
                loop.wake()
                continue
            }
            if !stillPaused { return }
        }
    }

    /// A request's work, on this (the vCPU's) thread.
    private func answer(_ request: VcpuRequest) -> VcpuResponse {
        do throws(KvmError) {
            switch request {
            case .saveState(let candidates, let hasXsave, let hasXcrs):
                return .saved(try VcpuState.capture(vcpu, msrIndices: vcpu.readableMSRs(of: candidates),
                                                    hasXsave: hasXsave, hasXcrs: hasXcrs))
            case .restoreState(let state):
                try state.apply(to: vcpu)
                return .restored
            }
        } catch {
            return .failed(error)
        }
    }

    private func run() {
        while true {
            parkIfRequested()
            do {
                let exit = try vcpu.runOnce()
                // An immediate exit stays requested until cleared; clearing it after every
                // interruption (then checking for a pause) can neither lose a pause nor spin.
                if case .interrupted = exit { vcpu.requestImmediateExit(false) }
                try handle(exit)
            } catch {
                return onStop("\(error)", 1)
            }
        }
    }

    private func handle(_ exit: VcpuExit) throws(KvmError) {
        switch exit {
        case .ioOut(let port, let size, let bytes):
            for value in stride(from: 0, to: bytes.count, by: size).map({ littleEndian(bytes[$0..<$0 + size]) }) {
                ports.write(port: port, size: size, value: UInt32(truncatingIfNeeded: value))
            }
        case .ioIn(let port, let size, let count):
            var bytes: [UInt8] = []
            for _ in 0..<count { bytes += bytesOf(UInt64(ports.read(port: port, size: size)), size: size) }
            vcpu.completeIoIn(bytes)
        case .mmioRead(let address, let size):
            vcpu.completeMmioRead(bytesOf(mmioRead(address, size), size: size))
        case .mmioWrite(let address, let bytes):
            mmioWrite(address, bytes)
        case .halt, .interrupted:
            break
        case .shutdown:
            onStop("guest shut down (triple fault)", 0)
        case .systemEvent(let type):
            onStop("guest system event \(type)", 0)
        case .internalError(let suberror):
            onStop("KVM internal error. Suberror: \(suberror)\n\(registerDump())", 1)
        case .failEntry(let reason):
            onStop("KVM: entry failed, hardware error 0x\(String(reason, radix: 16))", 1)
        case .other(let reason):
            onStop("KVM: unexpected exit reason \(reason)", 1)
        }
    }

    private func transport(at address: UInt64) -> (LoopBound<VirtioMmioTransport>, Int)? {
        for entry in transports where address >= entry.base && address - entry.base < VirtioMmioTransport.windowSize {
            return (entry.transport, Int(address - entry.base))
        }
        return nil
    }

    private func mmioRead(_ address: UInt64, _ size: Int) -> UInt64 {
        guard let (transport, offset) = transport(at: address) else { return 0 }
        return transport.performAndWait { $0.read(offset: offset, size: size) }
    }

    private func mmioWrite(_ address: UInt64, _ bytes: [UInt8]) {
        guard let (transport, offset) = transport(at: address) else { return }
        let value = littleEndian(bytes[...])
        transport.performAndWait { $0.write(offset: offset, size: bytes.count, value: value) }
    }

    private func registerDump() -> String {
        guard let regs = try? vcpu.getRegisters() else { return "" }
        return "RIP=\(hex(regs.rip)) RSP=\(hex(regs.rsp)) RFLAGS=\(hex(regs.rflags))"
    }

    private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    private func littleEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    private func bytesOf(_ value: UInt64, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
