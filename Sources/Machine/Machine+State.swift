import CKVM
import Devices
import Glibc
import KVM

// The contract the Migration module codes against (issue 12), as the brief gave it, with these
// compatible additions: `StateSection.label`, `ramPageSize`/`ramPageCount`, `drainDeviceRequests()`
// (call it after `stop()`, before `saveState`), and `start(incoming:onStop:)` in Machine.swift
// (no kernel, vCPU parked, run state `inmigrate`; `cont` resumes and looks at the restored queues).
// Order on the destination: RAM first, then `loadState` (the virtqueues are checked against their
// rings in RAM, as QEMU's virtio_load does), then `cont`. The run state itself is not a section:
// the stream carries it (QEMU's "globalstate").
//
// Threads: `saveState`, `loadState` and `drainDeviceRequests` run on the loop (the Machine is
// loop-owned: other threads reach it through a LoopBound). RAM and the dirty log are `ram`
// (GuestRam, Sendable): a migration thread reads and writes pages there.
extension Machine {
    /// On the loop, with the VM stopped: serves I/O completions until no guest device has a request
    /// in flight (QEMU's blk_drain for each device; the loop's AIO_WAIT_WHILE). A stopped device
    /// takes no new chain from its ring (the destination pops those on resume). Refuses
    /// after `timeoutSeconds`, naming the device (a hung NBD server, say).
    public func drainDeviceRequests(timeoutSeconds: Int = 30) throws(MachineError) {
        let devices = transports.compactMap { $0.1.device as? VirtioBlk }
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        while let busy = devices.first(where: { $0.requestsInFlight > 0 }) {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if now.tv_sec - start.tv_sec > timeoutSeconds {
                throw MachineError("virtio-blk \(busy.id.map { "'\($0)'" } ?? "(anonymous)"): \(busy.requestsInFlight) requests still in flight after \(timeoutSeconds) s")
            }
            loop.pollBlockLayer(timeoutMilliseconds: 100)
        }
    }

    /// The VM is stopped (vCPUs parked, block I/O drained: `drainDeviceRequests`). Called on the loop.
    /// Sections in load order: VM-wide KVM state, the vCPU, the port devices, then per virtio-mmio
    /// slot its transport, its queues and its device. The vCPU thread captures its part while the
    /// loop takes the rest.
    public func saveState() throws(MachineError) -> [StateSection] {
        guard let vcpuControl else { throw MachineError("saveState: the machine has not started") }
        let submitted = vcpuControl.submit(.saveState)
        let vmWide: Result<[StateSection], MachineError>
        let devices: Result<[StateSection], MachineError>
        do { vmWide = .success(try saveKvmState()) } catch { vmWide = .failure(error) }
        do {
            var sections: [StateSection] = []
            for (slot, entry) in transports.enumerated() { sections += try saveVirtio(slot: slot, entry.1) }
            devices = .success(sections)
        } catch {
            devices = .failure(error)
        }
        let vcpuSections = try Self.sections(of: submitted ?? vcpuControl.answer())
        return try vmWide.get() + vcpuSections + devices.get()
    }

    /// The vCPU's and the port devices' sections from the vCPU thread's answer (it owns the port devices).
    private static func sections(of response: VcpuResponse) throws(MachineError) -> [StateSection] {
        switch response {
        case .saved(let state, let serial, let debugExit):
            var sections = [section(.cpu, 0, StatePayloadCodec.encode(state)), section(.serial, 0, StatePayloadCodec.encode(serial))]
            if let debugExit { sections.append(section(.debugExit, 0, StatePayloadCodec.encode(debugExit))) }
            return sections
        case .failed(let error): throw MachineError(error, context: "cpu 0")
        case .notParked, .restored, .refused: throw MachineError("saveState: the vCPU is running: stop the VM first")
        }
    }

    private func saveKvmState() throws(MachineError) -> [StateSection] {
        do {
            var sections = [Self.section(.kvmClock, 0, StatePayloadCodec.encodeRaw(try vm.getClock()))]
            for chip in VirtualMachine.IrqChipID.allCases {
                sections.append(Self.section(.kvmIrqchip, chip.rawValue, StatePayloadCodec.encodeRaw(try vm.getIrqChip(chip))))
            }
            sections.append(Self.section(.kvmPit, 0, StatePayloadCodec.encodeRaw(try vm.getPIT2())))
            return sections
        } catch {
            throw MachineError(error, context: "saving the VM's KVM state")
        }
    }

    private func saveVirtio(slot: Int, _ transport: VirtioMmioTransport) throws(MachineError) -> [StateSection] {
        var sections = [Self.section(.virtioMmio, UInt32(slot), StatePayloadCodec.encode(transport.save()))]
        for (index, queue) in transport.queues.enumerated() {
            sections.append(Self.section(.virtqueue, Self.queueInstance(slot: slot, queue: index), StatePayloadCodec.encode(queue.save())))
        }
        if let blk = transport.device as? VirtioBlk {
            do { sections.append(Self.section(.virtioBlk, UInt32(slot), StatePayloadCodec.encode(try blk.save()))) } catch {
                throw MachineError(error, context: "virtio-blk \(slot)")
            }
        }
        return sections
    }

    static func queueInstance(slot: Int, queue: Int) -> UInt32 { UInt32(slot) << 16 | UInt32(queue) }

    static func section(_ kind: StateSectionKind, _ instance: UInt32, _ payload: [UInt8]) -> StateSection {
        StateSection(name: kind.rawValue, instanceId: instance, version: kind.version, payload: payload)
    }

    /// After `loadState`, on resume: each live queue is looked at once, as if the driver had kicked.
    func kickRestoredQueues() {
        kickQueuesOnResume = false
        for (_, transport) in transports {
            for index in transport.queues.indices { transport.notify(queue: index) }
        }
    }
}
