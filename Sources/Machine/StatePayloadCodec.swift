import CKVM
import Devices
import KVM

/// The little-endian payloads of the state sections: device structs field by field, KVM's structs
/// as the kernel lays them out (fixed sizes, checked). Decoding answers nil for a payload that is
/// short, long, or has a flag other than 0/1 or a string that is not UTF-8; values are checked
/// afterwards by their owners' `restore`.
enum StatePayloadCodec {
    // MARK: devices

    static func encode(_ state: SerialState) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(state.interruptEnable)
        writer.put(state.lineControl)
        writer.put(state.modemControl)
        writer.put(state.scratch)
        writer.put(state.divisor)
        return writer.bytes
    }

    static func decodeSerial(_ payload: [UInt8]) -> SerialState? {
        var reader = ByteReader(bytes: payload)
        guard let ier = reader.next(UInt8.self), let lcr = reader.next(UInt8.self), let mcr = reader.next(UInt8.self),
              let scratch = reader.next(UInt8.self), let divisor = reader.next(UInt16.self), reader.isAtEnd else { return nil }
        return SerialState(interruptEnable: ier, lineControl: lcr, modemControl: mcr, scratch: scratch, divisor: divisor)
    }

    static func encode(_ state: DebugExitState) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(state.iobase)
        writer.put(state.iosize)
        return writer.bytes
    }

    static func decodeDebugExit(_ payload: [UInt8]) -> DebugExitState? {
        var reader = ByteReader(bytes: payload)
        guard let iobase = reader.next(UInt16.self), let iosize = reader.next(UInt8.self), reader.isAtEnd else { return nil }
        return DebugExitState(iobase: iobase, iosize: iosize)
    }

    static func encode(_ state: VirtioMmioTransportState) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(state.status)
        writer.put(state.deviceFeaturesSelect)
        writer.put(state.driverFeaturesSelect)
        writer.put(state.driverFeatures)
        writer.put(state.queueSelect)
        writer.put(state.interruptStatus)
        writer.put(state.configGeneration)
        writer.put(state.brokenReason != nil)
        writer.put(string: state.brokenReason ?? "")
        writer.put(UInt16(state.queues.count))
        for queue in state.queues {
            writer.put(queue.size)
            writer.put(queue.ready)
            writer.put(queue.descriptorTable)
            writer.put(queue.availRing)
            writer.put(queue.usedRing)
        }
        return writer.bytes
    }

    static func decodeTransport(_ payload: [UInt8]) -> VirtioMmioTransportState? {
        var reader = ByteReader(bytes: payload)
        guard let status = reader.next(UInt32.self), let deviceSelect = reader.next(UInt32.self),
              let driverSelect = reader.next(UInt32.self), let features = reader.next(UInt64.self),
              let queueSelect = reader.next(UInt32.self), let interrupt = reader.next(UInt32.self),
              let generation = reader.next(UInt32.self), let broken = reader.nextBool(),
              let reason = reader.nextString(maximum: VirtioMmioTransportState.maxBrokenReasonBytes),
              let count = reader.next(UInt16.self) else { return nil }
        var queues: [VirtioMmioTransportState.QueueLayout] = []
        for _ in 0..<count {
            guard let size = reader.next(UInt16.self), let ready = reader.nextBool(), let desc = reader.next(UInt64.self),
                  let avail = reader.next(UInt64.self), let used = reader.next(UInt64.self) else { return nil }
            queues.append(.init(size: size, ready: ready, descriptorTable: desc, availRing: avail, usedRing: used))
        }
        guard reader.isAtEnd, broken || reason.isEmpty else { return nil }
        return VirtioMmioTransportState(status: status, deviceFeaturesSelect: deviceSelect, driverFeaturesSelect: driverSelect,
                                        driverFeatures: features, queueSelect: queueSelect, interruptStatus: interrupt,
                                        configGeneration: generation, brokenReason: broken ? reason : nil, queues: queues)
    }

    static func encode(_ state: VirtqueueState) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(state.lastAvailIndex)
        writer.put(state.usedIndex)
        writer.put(state.signalledUsedIndex)
        writer.put(state.eventIndexEnabled)
        return writer.bytes
    }

    static func decodeVirtqueue(_ payload: [UInt8]) -> VirtqueueState? {
        var reader = ByteReader(bytes: payload)
        guard let lastAvail = reader.next(UInt16.self), let used = reader.next(UInt16.self),
              let signalled = reader.next(UInt16.self), let eventIndex = reader.nextBool(), reader.isAtEnd else { return nil }
        return VirtqueueState(lastAvailIndex: lastAvail, usedIndex: used, signalledUsedIndex: signalled, eventIndexEnabled: eventIndex)
    }

    static func encode(_ state: VirtioBlkState) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(state.capacitySectors)
        writer.put(state.deviceFeatures)
        writer.put(string: state.serial)
        writer.put(UInt16(state.failedRequests.count))
        for request in state.failedRequests {
            writer.put(request.head)
            writer.put(request.kind)
            writer.put(request.sector)
            writer.put(UInt32(request.segments.count))
            for segment in request.segments {
                writer.put(segment.address)
                writer.put(segment.length)
                writer.put(segment.isWritable)
            }
        }
        return writer.bytes
    }

    /// A serial number is at most 20 bytes for the driver; QEMU accepts longer ones and cuts them.
    static let maxSerialBytes = 4096

    static func decodeVirtioBlk(_ payload: [UInt8]) -> VirtioBlkState? {
        var reader = ByteReader(bytes: payload)
        guard let capacity = reader.next(UInt64.self), let features = reader.next(UInt64.self),
              let serial = reader.nextString(maximum: maxSerialBytes), let count = reader.next(UInt16.self),
              count <= VirtioBlk.queueSize else { return nil }
        var requests: [VirtioBlkFailedRequestState] = []
        for _ in 0..<count {
            guard let request = decodeFailedRequest(&reader) else { return nil }
            requests.append(request)
        }
        guard reader.isAtEnd else { return nil }
        return VirtioBlkState(capacitySectors: capacity, deviceFeatures: features, serial: serial, failedRequests: requests)
    }

    /// One of virtio-blk's failed requests; nil for more segments than a chain can have.
    private static func decodeFailedRequest(_ reader: inout ByteReader) -> VirtioBlkFailedRequestState? {
        guard let head = reader.next(UInt16.self), let kind = reader.next(UInt32.self), let sector = reader.next(UInt64.self),
              let count = reader.next(UInt32.self), count <= VirtioBlkFailedRequestState.maxSegments else { return nil }
        var segments: [VirtioBlkFailedRequestState.Segment] = []
        for _ in 0..<count {
            guard let address = reader.next(UInt64.self), let length = reader.next(UInt32.self),
                  let writable = reader.nextBool() else { return nil }
            segments.append(.init(address: address, length: length, isWritable: writable))
        }
        return VirtioBlkFailedRequestState(head: head, kind: kind, sector: sector, segments: segments)
    }

    // MARK: KVM

    static func encode(_ state: VcpuState) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(state.xsave != nil)
        writer.put(state.xcrs != nil)
        writer.put(raw: state.regs)
        writer.put(raw: state.sregs)
        if let xsave = state.xsave { writer.put(raw: xsave) }
        if let fpu = state.fpu { writer.put(raw: fpu) }
        if let xcrs = state.xcrs { writer.put(raw: xcrs) }
        writer.put(raw: state.debugRegs)
        writer.put(raw: state.lapic)
        writer.put(raw: state.events)
        writer.put(raw: state.mpState)
        writer.put(UInt32(state.msrs.count))
        for msr in state.msrs {
            writer.put(msr.index)
            writer.put(msr.value)
        }
        return writer.bytes
    }

    /// More than KVM_GET_MSR_INDEX_LIST offers anywhere (a few hundred).
    static let maxMsrs = 4096

    static func decodeVcpu(_ payload: [UInt8]) -> VcpuState? {
        var reader = ByteReader(bytes: payload)
        guard let hasXsave = reader.nextBool(), let hasXcrs = reader.nextBool(),
              let regs = reader.nextRaw(kvm_regs()), let sregs = reader.nextRaw(kvm_sregs()) else { return nil }
        var xsave: kvm_xsave?
        var fpu: kvm_fpu?
        var xcrs: kvm_xcrs?
        if hasXsave {
            guard let value = reader.nextRaw(kvm_xsave()) else { return nil }
            xsave = value
        } else {
            guard let value = reader.nextRaw(kvm_fpu()) else { return nil }
            fpu = value
        }
        if hasXcrs {
            guard let value = reader.nextRaw(kvm_xcrs()) else { return nil }
            xcrs = value
        }
        guard let debugRegs = reader.nextRaw(kvm_debugregs()), let lapic = reader.nextRaw(kvm_lapic_state()),
              let events = reader.nextRaw(kvm_vcpu_events()), let mpState = reader.nextRaw(kvm_mp_state()),
              let count = reader.next(UInt32.self), count <= maxMsrs, reader.remaining == Int(count) * 12 else { return nil }
        var msrs: [MsrEntry] = []
        for _ in 0..<count {
            guard let index = reader.next(UInt32.self), let value = reader.next(UInt64.self) else { return nil }
            msrs.append(MsrEntry(index: index, value: value))
        }
        return VcpuState(regs: regs, sregs: sregs, xsave: xsave, fpu: fpu, xcrs: xcrs, debugRegs: debugRegs,
                         lapic: lapic, events: events, mpState: mpState, msrs: msrs)
    }

    /// kvm_irqchip, kvm_pit_state2 and kvm_clock_data as the kernel lays them out.
    static func encodeRaw<T>(_ value: T) -> [UInt8] {
        var writer = ByteWriter()
        writer.put(raw: value)
        return writer.bytes
    }

    static func decodeRaw<T>(_ payload: [UInt8], as blank: T) -> T? {
        var reader = ByteReader(bytes: payload)
        guard let value = reader.nextRaw(blank), reader.isAtEnd else { return nil }
        return value
    }
}
