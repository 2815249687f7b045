import Block
import Foundation
import Glibc
import KVM
import Testing
@testable import Devices

/// virtio-blk on a real file through libaio: its state cannot be taken with requests in flight,
/// and the data a read puts into guest RAM is marked for dirty tracking (KVM's log does not see it).
@Suite struct VirtioBlkStateTests {
    let memory: GuestMemory
    var ring: RingBuilder
    let path: String
    let aio: AioContext
    let link = RecordingTransportLink()
    let graph = BlockGraph()

    init() throws {
        memory = try GuestMemory(size: 1 << 20)
        ring = RingBuilder(memory: memory)
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vblk-state-\(UUID().uuidString).raw").path
        _ = FileManager.default.createFile(atPath: path, contents: Data([UInt8](repeating: 0x77, count: 1 << 20)))
        aio = try AioContext()
    }

    func makeDevice() throws -> VirtioBlk {
        let driver = try FileDriver(options: FileOptions(filename: path), engine: aio)
        let node = BlockNode(nodeName: "disk", driverName: "file", driver: driver, readOnly: false)
        try graph.add(node)
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        try VirtioBlk.claim(backend, deviceName: "vblk0", shareRW: false, incomingMigration: false)
        let device = VirtioBlk(backend: backend, memory: memory, serial: "x", id: "vblk0")
        device.activate(features: 0, queues: [try ring.makeQueue()], transport: link)
        return device
    }

    /// A 4 KiB read of sector 0 into 0x11000, status at 0x20000; not waited for.
    mutating func submitRead(_ device: VirtioBlk) throws {
        try memory.store(UInt32(0), at: 0x10000)
        try memory.store(UInt64(0), at: 0x10008)
        try ring.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 1)
        try ring.setDescriptor(1, address: 0x11000, length: 4096, flags: Virtqueue.flagNext | Virtqueue.flagWrite, next: 2)
        try ring.setDescriptor(2, address: 0x20000, length: 1, flags: Virtqueue.flagWrite)
        try ring.publish(0)
        device.processQueue(0)
    }

    func waitForCompletions() {
        while aio.inFlight > 0 {
            var descriptor = pollfd(fd: aio.eventFd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 1000)
            var counter: UInt64 = 0
            _ = read(aio.eventFd, &counter, 8)
            aio.processCompletions()
        }
    }

    @Test mutating func stateIsRefusedWhileRequestsAreInFlight() throws {
        let device = try makeDevice()
        try submitRead(device)
        #expect(device.requestsInFlight == 1)
        #expect(throws: DeviceStateError(section: "virtio-blk", field: "in_flight",
                                         "virtio-blk 'vblk0' has 1 requests in flight: drain before saving its state")) {
            try device.save()
        }
        waitForCompletions()
        #expect(device.requestsInFlight == 0)
        #expect(try device.save().serial == "x")
    }

    @Test mutating func readDataStatusAndUsedRingAreMarkedAsVmmWrites() throws {
        let device = try makeDevice()
        memory.vmmWrites.enable()
        try submitRead(device)
        _ = memory.vmmWrites.take()  // the test's own ring set-up
        waitForCompletions()
        #expect(try memory.load(UInt8.self, at: 0x11000) == 0x77)
        // data page 0x11, status byte page 0x20, used ring page 3
        #expect(memory.vmmWrites.take().dirtyPages == [3, 0x11, 0x20])
    }
}
