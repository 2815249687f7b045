import Block
import CKVM
import Devices
import Glibc
import KVM
import Synchronization

/// The loop of one vCPU thread: enter the guest, hand each exit to the device that owns it,
/// enter again. Port I/O (serial, debug-exit) is answered here, by devices this thread owns;
/// virtio-mmio register accesses go to the event loop, which owns those devices. Not Sendable:
/// `start` moves it to its thread, and the loop talks to that thread through `control`.
final class VcpuRunner {
    private let vcpu: Vcpu
    let control: VcpuControl
    private let ports: PortBus
    /// The port devices with state (also on `ports`): saved and restored on this thread.
    private let serial: Serial16550
    private let debugExit: DebugExit?
    /// The devices' MMIO windows: the transports belong to the loop, so an exit hands its access there.
    private let transports: [(base: UInt64, transport: LoopBound<VirtioMmioTransport>)]
    private let onStop: @Sendable (String, Int32) -> Void
    private let layout: VcpuStateLayout
    /// The layout's MSRs this vCPU reads back, found when the thread starts (`run`).
    private var savedMSRs: [UInt32] = []

    init(vcpu: Vcpu, ports: VcpuPorts, transports: [(UInt64, LoopBound<VirtioMmioTransport>)], control: VcpuControl,
         layout: VcpuStateLayout, onStop: @escaping @Sendable (String, Int32) -> Void) {
        self.vcpu = vcpu
        self.layout = layout
        self.control = control
        VcpuKick.installHandler()
        self.ports = ports.bus
        serial = ports.serial
        debugExit = ports.debugExit
        self.transports = transports.map { (base: $0.0, transport: $0.1) }
        self.onStop = onStop
    }

    /// Starts the vCPU's thread and hands `runner` to it: the caller keeps only its `control`.
    static func start(_ runner: sending VcpuRunner, name: String) throws(MachineError) {
        do {
            try NativeThread.start(name: name) {
                VcpuKick.unblockOnThisThread()
                runner.control.attachCurrentThread()
                runner.run()
                runner.control.threadFinished()
            }
        } catch {
            throw MachineError(error.description)
        }
    }

    /// A request's work, on this (the vCPU's) thread.
    private func answer(_ request: VcpuRequest) -> VcpuResponse {
        do throws(KvmError) {
            switch request {
            case .saveState:
                let state = try VcpuState.capture(vcpu, msrIndices: savedMSRs, hasXsave: layout.hasXsave, hasXcrs: layout.hasXcrs)
                return .saved(state, serial: serial.save(), debugExit: debugExit?.save())
            case .restoreState(let state, let serialState, let debugExitState):
                // The port devices first: a state they refuse changes nothing of the vCPU.
                do throws(DeviceStateError) { try serial.restore(serialState) } catch { return .refused(.serial, error) }
                if let debugExit, let debugExitState {
                    do throws(DeviceStateError) { try debugExit.restore(debugExitState) } catch { return .refused(.debugExit, error) }
                }
                try state.apply(to: vcpu)
                return .restored
            }
        } catch {
            return .failed(error)
        }
    }

    private func run() {
        savedMSRs = vcpu.readableMSRs(of: layout.msrCandidates)
        while control.mayRun(answering: answer) {
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
