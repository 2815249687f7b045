import Block
import Foundation
import Glibc
import KVM
import Testing
@testable import Devices

/// Each device's state struct: save → restore on a fresh device → save gives the same state,
/// and every loaded value a hostile stream could set is refused with the section and field named.
@Suite struct DeviceStateTests {
    typealias Register = VirtioMmioTransport.Register
    let memory: GuestMemory
    let graph = BlockGraph()

    init() throws {
        memory = try GuestMemory(size: 1 << 20)
    }

    /// virtio-blk on a null-co disk of `sectors` sectors (completes at once).
    func makeTransport(sectors: Int64 = 2048, serial: String = "s1") throws -> VirtioMmioTransport {
        let node = BlockNode(nodeName: "disk\(UUID().uuidString.prefix(8))", driverName: "null-co",
                             driver: NullDriver(size: sectors * 512, readZeroes: true), readOnly: false)
        try graph.add(node)
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        try VirtioBlk.claim(backend, deviceName: "vblk0", shareRW: false, incomingMigration: false)
        return try VirtioMmioTransport(device: VirtioBlk(backend: backend, memory: memory, serial: serial, id: "vblk0"), memory: memory)
    }

    /// The driver's side of virtio 1.x section 3.1.1: features with EVENT_IDX, queue 0 of 8 at
    /// 0x1000/0x2000/0x3000, DRIVER_OK.
    func bringUp(_ transport: VirtioMmioTransport) {
        func write(_ register: Register, _ value: UInt32) { transport.write(offset: register.rawValue, size: 4, value: UInt64(value)) }
        write(.status, 1)
        write(.status, 3)
        write(.driverFeaturesSelect, 0)
        write(.driverFeatures, UInt32(truncatingIfNeeded: VirtioFeature.ringEventIndex))
        write(.driverFeaturesSelect, 1)
        write(.driverFeatures, 1)
        write(.status, 0xb)
        write(.queueSelect, 0)
        write(.queueSize, 8)
        write(.queueDescLow, 0x1000)
        write(.queueDriverLow, 0x2000)
        write(.queueDeviceLow, 0x3000)
        write(.queueReady, 1)
        write(.status, 0xf)
    }

    // MARK: serial and debug-exit

    @Test func serialStateRoundTripsAndRefusesImpossibleBits() throws {
        let uart = Serial16550(outputFd: nil)
        uart.writePort(offset: 3, size: 1, value: 0x83)  // DLAB
        uart.writePort(offset: 0, size: 1, value: 0x01)
        uart.writePort(offset: 3, size: 1, value: 0x03)
        uart.writePort(offset: 1, size: 1, value: 0x05)
        uart.writePort(offset: 7, size: 1, value: 0x42)
        let state = uart.save()
        let fresh = Serial16550(outputFd: nil)
        try fresh.restore(state)
        #expect(fresh.save() == state)
        #expect(fresh.readPort(offset: 7, size: 1) == 0x42 && fresh.readPort(offset: 1, size: 1) == 0x05)
        var hostile = state
        hostile.interruptEnable = 0x10
        #expect(throws: DeviceStateError(section: "serial", field: "ier", "0x10 has bits outside 0xf")) { try fresh.restore(hostile) }
        hostile = state
        hostile.modemControl = 0xe0
        #expect(throws: DeviceStateError(section: "serial", field: "mcr", "0xe0 has bits outside 0x1f")) { try fresh.restore(hostile) }
    }

    @Test func debugExitStateNamesAPortElsewhere() throws {
        let here = DebugExit(iobase: 0x501) { _ in }
        try here.restore(DebugExitState(iobase: 0x501, iosize: 1))
        #expect(throws: DeviceStateError(section: "debug-exit", field: "iobase", "0xf4, but this machine has it at 0x501")) {
            try here.restore(DebugExitState(iobase: 0xf4, iosize: 1))
        }
        #expect(throws: DeviceStateError.self) { try here.restore(DebugExitState(iobase: 0x501, iosize: 4)) }
    }

    // MARK: virtio-mmio, virtqueue, virtio-blk

    @Test func transportQueueAndDeviceStateRoundTrip() throws {
        let source = try makeTransport()
        bringUp(source)
        #expect(source.isActive)
        // The device takes and returns one chain, so the indices are not the reset ones.
        try memory.store(UInt64(0x5000), at: 0x1000)
        try memory.store(UInt32(16), at: 0x1008)
        try memory.store(UInt16(1), at: 0x100c)
        try memory.store(UInt16(1), at: 0x100e)
        try memory.store(UInt64(0x6000), at: 0x1010)
        try memory.store(UInt32(1), at: 0x1018)
        try memory.store(UInt16(2), at: 0x101c)
        try memory.store(UInt32(4), at: 0x5000)  // FLUSH
        try memory.store(UInt16(0), at: 0x2004)
        try memory.store(UInt16(1), at: 0x2002)
        source.notify(queue: 0)
        #expect(source.queues[0].usedIndex == 1)
        let transportState = source.save()
        let queueState = source.queues[0].save()
        let blkState = try (source.device as! VirtioBlk).save()

        let destination = try makeTransport()
        try (destination.device as! VirtioBlk).restore(blkState)
        try destination.restore(transportState)
        try destination.queues[0].restore(queueState)
        #expect(destination.save() == transportState)
        #expect(destination.queues[0].save() == queueState)
        #expect(destination.isActive && destination.queues[0].eventIndexEnabled)
        #expect(destination.read(offset: Register.queueReady.rawValue, size: 4) == 1)
        // It carries on: the next chain the driver publishes is served.
        try memory.store(UInt16(0), at: 0x2006)
        try memory.store(UInt16(2), at: 0x2002)
        destination.notify(queue: 0)
        #expect(destination.queues[0].usedIndex == 2)
    }

    private func refusedTransport(_ change: (inout VirtioMmioTransportState) -> Void) throws -> String {
        let source = try makeTransport()
        bringUp(source)
        var state = source.save()
        change(&state)
        do {
            try makeTransport().restore(state)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func transportRefusesHostileValues() throws {
        #expect(try refusedTransport { $0.queues[0].size = 100 } == "virtio-mmio: field 'queue[0].size': 100 is not a power of 2 up to 128")
        #expect(try refusedTransport { $0.queues[0].size = 256 } == "virtio-mmio: field 'queue[0].size': 256 is above the maximum 128")
        #expect(try refusedTransport { $0.queues[0].size = 0 } == "virtio-mmio: field 'queue[0].size': 0 is not a power of 2 up to 128")
        #expect(try refusedTransport { $0.queues[0].usedRing = (1 << 20) - 8 }
                == "virtio-mmio: field 'queue[0].used': ring at 0xffff8 (+70) is outside guest RAM")
        #expect(try refusedTransport { $0.queues[0].descriptorTable = UInt64.max - 4 }.hasPrefix("virtio-mmio: field 'queue[0].desc': ring at"))
        #expect(try refusedTransport { $0.driverFeatures |= 1 << 40 }.hasPrefix("virtio-mmio: field 'driver_features': 0x10"))
        #expect(try refusedTransport { $0.driverFeatures &= ~VirtioFeature.version1 }
                == "virtio-mmio: field 'driver_features': FEATURES_OK without VIRTIO_F_VERSION_1")
        #expect(try refusedTransport { $0.status |= 0x100 } == "virtio-mmio: field 'status': unknown bits 0x100")
        #expect(try refusedTransport { $0.status = 0x7 } == "virtio-mmio: field 'status': DRIVER_OK without FEATURES_OK")
        #expect(try refusedTransport { $0.status |= 0x40 } == "virtio-mmio: field 'status': DEVICE_NEEDS_RESET and the broken reason disagree")
        #expect(try refusedTransport { $0.interruptStatus = 4 } == "virtio-mmio: field 'interrupt_status': unknown bits 0x4")
        #expect(try refusedTransport { $0.queues.append($0.queues[0]) } == "virtio-mmio: field 'queues': 2 queues, this device has 1")
        #expect(try refusedTransport { $0.queues = [] } == "virtio-mmio: field 'queues': 0 queues, this device has 1")
        // A queue that is not live may hold any size up to the maximum, as a driver mid-setup leaves it.
        #expect(try refusedTransport { $0.queues[0].ready = false; $0.queues[0].size = 3 } == "accepted")
    }

    @Test func aBrokenDeviceStaysBrokenAfterRestore() throws {
        let source = try makeTransport()
        bringUp(source)
        source.deviceError("virtio-blk missing headers")
        let destination = try makeTransport()
        try destination.restore(source.save())
        #expect(destination.brokenReason == "virtio-blk missing headers" && !destination.isActive)
    }

    private func refusedQueue(availIndex: UInt16 = 0, _ change: (inout VirtqueueState) -> Void) throws -> String {
        let source = try makeTransport()
        bringUp(source)
        var state = source.queues[0].save()
        change(&state)
        let destination = try makeTransport()
        try destination.restore(source.save())
        try memory.store(availIndex, at: 0x2002)
        do {
            try destination.queues[0].restore(state)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func virtqueueRefusesIndicesInconsistentWithItsRings() throws {
        #expect(try refusedQueue(availIndex: 20) { _ in }
                == "virtqueue: field 'last_avail_idx': 0 inconsistent with the guest's avail index 20 (queue size 8)")
        #expect(try refusedQueue { $0.lastAvailIndex = 9; $0.usedIndex = 0 }
                == "virtqueue: field 'used_idx': 0 is more than the queue size 8 behind last_avail_idx 9")
        #expect(try refusedQueue { $0.eventIndexEnabled = false }
                == "virtqueue: field 'event_idx': false, but the negotiated features say true")
        #expect(try refusedQueue(availIndex: 5) { $0.lastAvailIndex = 5; $0.usedIndex = 5 } == "accepted")
        // A queue that is not live has no indices.
        let idle = try makeTransport()
        #expect(throws: DeviceStateError(section: "virtqueue", field: "last_avail_idx", "indices on a queue that is not ready")) {
            try idle.queues[0].restore(VirtqueueState(lastAvailIndex: 3, usedIndex: 3, signalledUsedIndex: 0, eventIndexEnabled: false))
        }
    }

    @Test func virtioBlkRefusesADifferentDisk() throws {
        let source = try makeTransport(sectors: 2048, serial: "s1")
        let state = try (source.device as! VirtioBlk).save()
        let bigger = try makeTransport(sectors: 4096, serial: "s1")
        #expect(throws: DeviceStateError(section: "virtio-blk", field: "capacity",
                                         "2048 sectors in the stream, 4096 sectors on virtio-blk 'vblk0' here")) {
            try (bigger.device as! VirtioBlk).restore(state)
        }
        let renamed = try makeTransport(sectors: 2048, serial: "other")
        #expect(throws: DeviceStateError(section: "virtio-blk", field: "serial", "'s1' in the stream, 'other' on virtio-blk 'vblk0' here")) {
            try (renamed.device as! VirtioBlk).restore(state)
        }
    }
}
