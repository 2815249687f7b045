import Block
import CKVM
import Devices
import KVM

/// The state sections' fuzz entry (`make fuzz`, target `state`): the first byte picks the section
/// kind, the rest is its payload, as a migration stream would deliver it. Device payloads are
/// decoded and restored onto fresh devices over 64 KiB of RAM (a virtqueue onto a live queue);
/// KVM payloads are decoded and checked (no /dev/kvm needed). Never traps: a hostile payload is nil
/// from the decoder or an error from the checks.
public enum StateFuzzEntry {
    static let ramSize = 64 << 10

    public static func fuzz(_ data: [UInt8]) {
        guard let selector = data.first else { return }
        let kinds = StateSectionKind.allCases
        let kind = kinds[Int(selector) % kinds.count]
        let payload = Array(data.dropFirst())
        switch kind {
        case .cpu:
            if let vcpu = StatePayloadCodec.decodeVcpu(payload) { try? MachineStateChecks.check(vcpu: vcpu) }
        case .kvmClock:
            _ = StatePayloadCodec.decodeRaw(payload, as: kvm_clock_data())
        case .kvmIrqchip:
            if let chip = StatePayloadCodec.decodeRaw(payload, as: kvm_irqchip()) {
                try? MachineStateChecks.check(chips: [kvm_irqchip(), kvm_irqchip(), chip])
            }
        case .kvmPit:
            if let pit = StatePayloadCodec.decodeRaw(payload, as: kvm_pit_state2()) { try? MachineStateChecks.check(pit: pit) }
        case .serial:
            if let state = StatePayloadCodec.decodeSerial(payload) { try? Serial16550(outputFd: nil).restore(state) }
        case .debugExit:
            if let state = StatePayloadCodec.decodeDebugExit(payload) { try? DebugExit { _ in }.restore(state) }
        case .virtioMmio, .virtqueue, .virtioBlk:
            fuzzVirtio(kind, payload)
        }
    }

    private static func fuzzVirtio(_ kind: StateSectionKind, _ payload: [UInt8]) {
        guard let transport = makeTransport() else { return }
        switch kind {
        case .virtioMmio:
            guard let state = StatePayloadCodec.decodeTransport(payload), (try? transport.restore(state)) != nil else { return }
            transport.notify(queue: 0)  // a restored live queue is looked at on resume
        case .virtqueue:
            guard let state = StatePayloadCodec.decodeVirtqueue(payload), (try? transport.restore(liveTransport)) != nil,
                  (try? transport.queues[0].restore(state)) != nil else { return }
            transport.notify(queue: 0)
        default:
            // Restored failed requests go to the disk once the VM runs (on a live queue only).
            guard let blk = transport.device as? VirtioBlk, let state = StatePayloadCodec.decodeVirtioBlk(payload),
                  (try? blk.restore(state)) != nil, (try? transport.restore(liveTransport)) != nil,
                  (try? blk.checkRestoredRequests()) != nil else { return }
            blk.vmStateChanged(running: true)
        }
    }

    /// A driver that negotiated VERSION_1 and EVENT_IDX with queue 0 of 8 entries live.
    static let liveTransport = VirtioMmioTransportState(
        status: 0xf, deviceFeaturesSelect: 0, driverFeaturesSelect: 0,
        driverFeatures: VirtioFeature.version1 | VirtioFeature.ringEventIndex, queueSelect: 0, interruptStatus: 0,
        configGeneration: 0, brokenReason: nil,
        queues: [.init(size: 8, ready: true, descriptorTable: 0x1000, availRing: 0x2000, usedRing: 0x3000)])

    /// virtio-blk over a 1 MiB null-co disk on a fresh transport.
    private static func makeTransport() -> VirtioMmioTransport? {
        guard let memory = try? GuestMemory(size: ramSize) else { return nil }
        let graph = BlockGraph()
        let node = BlockNode(nodeName: "disk", driverName: "null-co", driver: NullDriver(size: 1 << 20, readZeroes: true), readOnly: false)
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        guard (try? graph.add(node)) != nil, (try? backend.insert(node)) != nil,
              (try? VirtioBlk.claim(backend, deviceName: "vblk0", shareRW: false, incomingMigration: false)) != nil else { return nil }
        return try? VirtioMmioTransport(device: VirtioBlk(backend: backend, memory: memory, serial: "fuzz"), memory: memory)
    }
}
