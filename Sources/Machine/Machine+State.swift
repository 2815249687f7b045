import CKVM
import Devices
import Glibc
import KVM

// The contract the Migration module codes against (issue 12). Compatible additions to the brief's
// shape: `StateSection.label`, `start(incoming:onStop:)` in Machine.swift, and the rule for which
// thread may call what (below).
//
// Threads: `saveState`, `loadState`, `startDirtyTracking` and `stopDirtyTracking` run on the
// loop. `fetchDirtyPages`, `readRamPage` and `writeRamPage` may run on a migration worker thread
// (KVM's dirty-log ioctl and the VMM-write bitmap's atomics are safe there; see GuestMemory.copyPage).
extension Machine {
    /// RAM access for the migration stream (page size 4096).
    public static let ramPageSize = DirtyPageBitmap.pageSize

    public var ramSize: Int { memory.size }

    /// RAM pages (the last one may be short if RAM is not a multiple of 4 KiB).
    public var ramPageCount: Int { memory.pageCount }

    /// KVM's log on for the RAM slot and the VMM-write bitmap on, both empty: the caller sends
    /// every page once (its bulk pass) and then what `fetchDirtyPages` reports.
    public func startDirtyTracking() throws(MachineError) {
        memory.vmmWrites.enable()
        do {
            try vm.setDirtyLogging(memory, slot: Self.ramSlot, enabled: true)
        } catch {
            memory.vmmWrites.disable()
            throw MachineError("dirty tracking: \(error)")
        }
    }

    /// KVM's log ∪ the pages svmm wrote, since the last fetch (or the start); both cleared.
    public func fetchDirtyPages() throws(MachineError) -> DirtyPageBitmap {
        var pages: DirtyPageBitmap
        do {
            pages = try vm.fetchDirtyLog(slot: Self.ramSlot, pageCount: memory.pageCount)
        } catch {
            throw MachineError("dirty tracking: \(error)")
        }
        pages.formUnion(memory.vmmWrites.take())
        return pages
    }

    public func stopDirtyTracking() {
        try? vm.setDirtyLogging(memory, slot: Self.ramSlot, enabled: false)  // only fails if the slot is gone
        memory.vmmWrites.disable()
    }

    public func readRamPage(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(MachineError) {
        do { try memory.copyPage(index, into: buffer) } catch { throw MachineError("RAM page \(index): \(error)") }
    }

    public func writeRamPage(_ index: Int, from buffer: UnsafeRawBufferPointer) throws(MachineError) {
        do { try memory.fillPage(index, from: buffer) } catch { throw MachineError("RAM page \(index): \(error)") }
    }

    /// On the loop, with the VM stopped: serves I/O completions until no guest device has a request
    /// in flight (QEMU's blk_drain for each device; the loop's AIO_WAIT_WHILE). Completions may
    /// start requests for chains the driver published before the stop; those finish too. Refuses
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
    /// slot its transport, its queues and its device.
    public func saveState() throws(MachineError) -> [StateSection] {
        guard let vcpuRunner else { throw MachineError("saveState: the machine has not started") }
        var sections = try saveKvmState()
        let msrs: [UInt32]
        do { msrs = try vm.kvm.msrIndexList() } catch { throw MachineError("cpu 0: \(error)") }
        switch vcpuRunner.perform(.saveState(msrCandidates: msrs, hasXsave: vm.kvm.checkExtension(KVM_CAP_XSAVE) > 0,
                                             hasXcrs: vm.kvm.checkExtension(KVM_CAP_XCRS) > 0)) {
        case .saved(let state): sections.append(Self.section(.cpu, 0, StatePayloadCodec.encode(state)))
        case .failed(let error): throw MachineError("cpu 0: \(error)")
        case .notParked, .restored: throw MachineError("saveState: the vCPU is running: stop the VM first")
        }
        // The vCPU thread owns the port devices; it is parked, and its mutex hand-off orders these reads.
        if let serialDevice { sections.append(Self.section(.serial, 0, StatePayloadCodec.encode(serialDevice.save()))) }
        if let debugExitDevice { sections.append(Self.section(.debugExit, 0, StatePayloadCodec.encode(debugExitDevice.save()))) }
        for (slot, entry) in transports.enumerated() { sections += try saveVirtio(slot: slot, entry.1) }
        return sections
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
            throw MachineError("saving the VM's KVM state: \(error)")
        }
    }

    private func saveVirtio(slot: Int, _ transport: VirtioMmioTransport) throws(MachineError) -> [StateSection] {
        var sections = [Self.section(.virtioMmio, UInt32(slot), StatePayloadCodec.encode(transport.save()))]
        for (index, queue) in transport.queues.enumerated() {
            sections.append(Self.section(.virtqueue, Self.queueInstance(slot: slot, queue: index), StatePayloadCodec.encode(queue.save())))
        }
        if let blk = transport.device as? VirtioBlk {
            do { sections.append(Self.section(.virtioBlk, UInt32(slot), StatePayloadCodec.encode(try blk.save()))) } catch {
                throw MachineError("virtio-blk \(slot): \(error)")
            }
        }
        return sections
    }

    /// On a destination created with the same config, before its vCPUs first enter the guest, and
    /// after the RAM is in (the virtqueues are checked against their rings, as QEMU's virtio_load).
    /// Refuses a missing/unknown/duplicate section, a wrong version or a bad value with a message
    /// naming the section. Every payload is decoded before anything is applied; a failure while
    /// applying leaves the machine half-loaded: the destination must then not be run.
    public func loadState(_ sections: [StateSection]) throws(MachineError) {
        guard let vcpuRunner else { throw MachineError("loadState: the machine has not started (start it with incoming: true)") }
        let byKey = try checkSectionSet(sections)
        func payload(_ kind: StateSectionKind, _ instance: UInt32) -> [UInt8] { byKey[StateSectionKey(kind.rawValue, instance)]!.payload }
        func malformed(_ kind: StateSectionKind, _ instance: UInt32) -> MachineError {
            MachineError("State section '\(kind.rawValue)' instance \(instance): malformed payload (\(payload(kind, instance).count) bytes)")
        }
        // Decode all first.
        guard let vcpu = StatePayloadCodec.decodeVcpu(payload(.cpu, 0)) else { throw malformed(.cpu, 0) }
        guard let clock = StatePayloadCodec.decodeRaw(payload(.kvmClock, 0), as: kvm_clock_data()) else { throw malformed(.kvmClock, 0) }
        var chips: [kvm_irqchip] = []
        for chip in VirtualMachine.IrqChipID.allCases {
            guard let value = StatePayloadCodec.decodeRaw(payload(.kvmIrqchip, chip.rawValue), as: kvm_irqchip()) else {
                throw malformed(.kvmIrqchip, chip.rawValue)
            }
            chips.append(value)
        }
        guard let pit = StatePayloadCodec.decodeRaw(payload(.kvmPit, 0), as: kvm_pit_state2()) else { throw malformed(.kvmPit, 0) }
        guard let serial = StatePayloadCodec.decodeSerial(payload(.serial, 0)) else { throw malformed(.serial, 0) }
        var debugExit: DebugExitState?
        if debugExitDevice != nil {
            guard let value = StatePayloadCodec.decodeDebugExit(payload(.debugExit, 0)) else { throw malformed(.debugExit, 0) }
            debugExit = value
        }
        let virtio = try decodeVirtio(payload, malformed)
        try MachineStateChecks.check(vcpu: vcpu, chips: chips, pit: pit)

        // Then apply, VM-wide first (the LAPIC and the irqchip agree on interrupts), the vCPU on its thread.
        do {
            for chip in chips { try vm.setIrqChip(chip) }
            try vm.setPIT2(pit)
        } catch {
            throw MachineError("loading the VM's KVM state: \(error)")
        }
        try applyDevices(serial: serial, debugExit: debugExit, virtio: virtio)
        switch vcpuRunner.perform(.restoreState(vcpu)) {
        case .restored: break
        case .failed(let error): throw MachineError("State section 'cpu' instance 0: \(error)")
        case .notParked, .saved: throw MachineError("loadState: the vCPU is running")
        }
        do { try vm.setClock(clock) } catch { throw MachineError("State section 'kvm-clock' instance 0: \(error)") }
        kickQueuesOnResume = true
    }

    private typealias VirtioSlotState = (transport: VirtioMmioTransportState, queues: [VirtqueueState], blk: VirtioBlkState?)

    private func decodeVirtio(_ payload: (StateSectionKind, UInt32) -> [UInt8],
                              _ malformed: (StateSectionKind, UInt32) -> MachineError) throws(MachineError) -> [VirtioSlotState] {
        var slots: [VirtioSlotState] = []
        for (slot, entry) in transports.enumerated() {
            let instance = UInt32(slot)
            guard let transport = StatePayloadCodec.decodeTransport(payload(.virtioMmio, instance)) else { throw malformed(.virtioMmio, instance) }
            var queues: [VirtqueueState] = []
            for index in entry.1.queues.indices {
                let queueInstance = Self.queueInstance(slot: slot, queue: index)
                guard let queue = StatePayloadCodec.decodeVirtqueue(payload(.virtqueue, queueInstance)) else {
                    throw malformed(.virtqueue, queueInstance)
                }
                queues.append(queue)
            }
            var blk: VirtioBlkState?
            if entry.1.device is VirtioBlk {
                guard let value = StatePayloadCodec.decodeVirtioBlk(payload(.virtioBlk, instance)) else { throw malformed(.virtioBlk, instance) }
                blk = value
            }
            slots.append((transport, queues, blk))
        }
        return slots
    }

    private func applyDevices(serial: SerialState, debugExit: DebugExitState?, virtio: [VirtioSlotState]) throws(MachineError) {
        func named(_ kind: StateSectionKind, _ instance: UInt32, _ error: DeviceStateError) -> MachineError {
            MachineError("State section '\(kind.rawValue)' instance \(instance): field '\(error.field)': \(error.problem)")
        }
        do throws(DeviceStateError) { try serialDevice?.restore(serial) } catch { throw named(.serial, 0, error) }
        if let debugExit {
            do throws(DeviceStateError) { try debugExitDevice?.restore(debugExit) } catch { throw named(.debugExit, 0, error) }
        }
        for (slot, (entry, state)) in zip(transports, virtio).enumerated() {
            let transport = entry.1
            if let blk = transport.device as? VirtioBlk, let blkState = state.blk {
                do throws(DeviceStateError) { try blk.restore(blkState) } catch { throw named(.virtioBlk, UInt32(slot), error) }
            }
            do throws(DeviceStateError) { try transport.restore(state.transport) } catch { throw named(.virtioMmio, UInt32(slot), error) }
            for (index, (queue, queueState)) in zip(transport.queues, state.queues).enumerated() {
                do throws(DeviceStateError) { try queue.restore(queueState) } catch {
                    throw named(.virtqueue, Self.queueInstance(slot: slot, queue: index), error)
                }
            }
        }
    }

    /// Every section this machine has, once, with its version; nothing else.
    private func checkSectionSet(_ sections: [StateSection]) throws(MachineError) -> [StateSectionKey: StateSection] {
        let expected = expectedSections
        var byKey: [StateSectionKey: StateSection] = [:]
        for section in sections {
            let key = StateSectionKey(section.name, section.instanceId)
            guard let version = expected[key] else {
                throw MachineError("Unknown state section '\(section.name)' instance \(section.instanceId): this machine has no such device")
            }
            guard byKey[key] == nil else { throw MachineError("State section '\(section.name)' instance \(section.instanceId) appears twice") }
            guard section.version == version else {
                throw MachineError("State section '\(section.name)' instance \(section.instanceId): version \(section.version), this svmm loads version \(version)")
            }
            byKey[key] = section
        }
        if let missing = expected.keys.sorted().first(where: { byKey[$0] == nil }) {
            throw MachineError("State section '\(missing.name)' instance \(missing.instance) is missing: the source has a different device set")
        }
        return byKey
    }

    private var expectedSections: [StateSectionKey: UInt32] {
        var expected: [StateSectionKey: UInt32] = [:]
        func add(_ kind: StateSectionKind, _ instance: UInt32) { expected[StateSectionKey(kind.rawValue, instance)] = kind.version }
        add(.cpu, 0)
        add(.kvmClock, 0)
        for chip in VirtualMachine.IrqChipID.allCases { add(.kvmIrqchip, chip.rawValue) }
        add(.kvmPit, 0)
        add(.serial, 0)
        if debugExitDevice != nil { add(.debugExit, 0) }
        for (slot, entry) in transports.enumerated() {
            add(.virtioMmio, UInt32(slot))
            for index in entry.1.queues.indices { add(.virtqueue, Self.queueInstance(slot: slot, queue: index)) }
            if entry.1.device is VirtioBlk { add(.virtioBlk, UInt32(slot)) }
        }
        return expected
    }

    static func queueInstance(slot: Int, queue: Int) -> UInt32 { UInt32(slot) << 16 | UInt32(queue) }

    private static func section(_ kind: StateSectionKind, _ instance: UInt32, _ payload: [UInt8]) -> StateSection {
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
