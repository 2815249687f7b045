import CKVM
import Devices
import KVM

/// `loadState`: check the set of sections, decode them all, check the values, then apply.
extension Machine {
    /// On a destination created with the same config, before its vCPUs first enter the guest, and
    /// after the RAM is in (the virtqueues are checked against their rings, as QEMU's virtio_load).
    /// Refuses a missing/unknown/duplicate section, a wrong version or a bad value with a message
    /// naming the section. Every payload is decoded before anything is applied; a failure while
    /// applying leaves the machine half-loaded: the destination must then not be run.
    public func loadState(_ sections: [StateSection]) throws(MachineError) {
        guard let vcpuControl else { throw MachineError("loadState: the machine has not started (start it with incoming: true)") }
        // The parked vCPU thread wakes now, while the loop decodes, and then takes the restore
        // and the resume without another wake-up.
        vcpuControl.keepAwake(forNanoseconds: Self.switchoverPollNanoseconds)
        let state = try decode(try StateSectionSet(sections, expected: expectedSections))
        try MachineStateChecks.check(vcpu: state.vcpu)
        try MachineStateChecks.check(chips: state.chips)
        try MachineStateChecks.check(pit: state.pit)

        // VM-wide first (the LAPIC and the irqchip agree on interrupts), the vCPU on its own thread.
        do {
            for chip in state.chips { try vm.setIrqChip(chip) }
            try vm.setPIT2(state.pit)
        } catch {
            throw MachineError(error, context: "loading the VM's KVM state")
        }
        try applyDevices(state)
        switch vcpuControl.perform(.restoreState(state.vcpu, serial: state.serial, debugExit: state.debugExit)) {
        case .restored: break
        case .refused(let kind, let error): throw Self.refused(kind, 0, error)
        case .failed(let error): throw MachineError(error, context: "State section 'cpu' instance 0")
        case .notParked, .saved: throw MachineError("loadState: the vCPU is running")
        }
        do { try vm.setClock(state.clock) } catch { throw MachineError(error, context: "State section 'kvm-clock' instance 0") }
        kickQueuesOnResume = true
    }

    private func decode(_ sections: StateSectionSet) throws(MachineError) -> DecodedMachineState {
        var chips: [kvm_irqchip] = []
        for chip in VirtualMachine.IrqChipID.allCases {
            chips.append(try sections.decode(.kvmIrqchip, chip.rawValue) { StatePayloadCodec.decodeRaw($0, as: kvm_irqchip()) })
        }
        return DecodedMachineState(
            vcpu: try sections.decode(.cpu, 0, StatePayloadCodec.decodeVcpu),
            clock: try sections.decode(.kvmClock) { StatePayloadCodec.decodeRaw($0, as: kvm_clock_data()) },
            chips: chips,
            pit: try sections.decode(.kvmPit) { StatePayloadCodec.decodeRaw($0, as: kvm_pit_state2()) },
            serial: try sections.decode(.serial, 0, StatePayloadCodec.decodeSerial),
            debugExit: config.debugExitPort == nil ? nil : try sections.decode(.debugExit, 0, StatePayloadCodec.decodeDebugExit),
            virtio: try decodeVirtio(sections))
    }

    private func decodeVirtio(_ sections: StateSectionSet) throws(MachineError) -> [DecodedMachineState.VirtioSlot] {
        var slots: [DecodedMachineState.VirtioSlot] = []
        for (slot, entry) in transports.enumerated() {
            var queues: [VirtqueueState] = []
            for index in entry.1.queues.indices {
                queues.append(try sections.decode(.virtqueue, Self.queueInstance(slot: slot, queue: index), StatePayloadCodec.decodeVirtqueue))
            }
            slots.append(DecodedMachineState.VirtioSlot(
                transport: try sections.decode(.virtioMmio, UInt32(slot), StatePayloadCodec.decodeTransport),
                queues: queues,
                blk: entry.1.device is VirtioBlk ? try sections.decode(.virtioBlk, UInt32(slot), StatePayloadCodec.decodeVirtioBlk) : nil))
        }
        return slots
    }

    private static func refused(_ kind: StateSectionKind, _ instance: UInt32, _ error: DeviceStateError) -> MachineError {
        MachineError("State section '\(kind.rawValue)' instance \(instance): field '\(error.field)': \(error.problem)")
    }

    /// Per slot the device's own checks, the transport (which activates the device as DRIVER_OK
    /// did), and the queues' indices. (The port devices' state goes to the vCPU thread, which owns them.)
    private func applyDevices(_ state: DecodedMachineState) throws(MachineError) {
        let named = Self.refused
        for (slot, (entry, loaded)) in zip(transports, state.virtio).enumerated() {
            let transport = entry.1
            if let blk = transport.device as? VirtioBlk, let blkState = loaded.blk {
                do throws(DeviceStateError) { try blk.restore(blkState) } catch { throw named(.virtioBlk, UInt32(slot), error) }
            }
            do throws(DeviceStateError) { try transport.restore(loaded.transport) } catch { throw named(.virtioMmio, UInt32(slot), error) }
            for (index, (queue, queueState)) in zip(transport.queues, loaded.queues).enumerated() {
                do throws(DeviceStateError) { try queue.restore(queueState) } catch {
                    throw named(.virtqueue, Self.queueInstance(slot: slot, queue: index), error)
                }
            }
            if let blk = transport.device as? VirtioBlk {
                do throws(DeviceStateError) { try blk.checkRestoredRequests() } catch { throw named(.virtioBlk, UInt32(slot), error) }
            }
        }
    }

    /// Every section this machine has, with the version it loads.
    private var expectedSections: [StateSectionKey: UInt32] {
        var expected: [StateSectionKey: UInt32] = [:]
        func add(_ kind: StateSectionKind, _ instance: UInt32) { expected[StateSectionKey(kind.rawValue, instance)] = kind.version }
        add(.cpu, 0)
        add(.kvmClock, 0)
        for chip in VirtualMachine.IrqChipID.allCases { add(.kvmIrqchip, chip.rawValue) }
        add(.kvmPit, 0)
        add(.serial, 0)
        if config.debugExitPort != nil { add(.debugExit, 0) }
        for (slot, entry) in transports.enumerated() {
            add(.virtioMmio, UInt32(slot))
            for index in entry.1.queues.indices { add(.virtqueue, Self.queueInstance(slot: slot, queue: index)) }
            if entry.1.device is VirtioBlk { add(.virtioBlk, UInt32(slot)) }
        }
        return expected
    }
}
