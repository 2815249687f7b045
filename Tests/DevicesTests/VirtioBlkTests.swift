import Block
import Foundation
import Glibc
import KVM
import Testing
@testable import Devices

/// virtio-blk against a real file through libaio, driven by hand-made descriptor chains.
@Suite struct VirtioBlkTests {
    static let diskSize = 1 << 20
    let memory: GuestMemory
    var ring: RingBuilder
    let path: String
    let aio: AioContext
    let link = RecordingTransportLink()
    let graph = BlockGraph()

    init() throws {
        memory = try GuestMemory(size: 1 << 20)
        ring = RingBuilder(memory: memory)
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vblk-\(UUID().uuidString).raw").path
        let pattern = (0..<Self.diskSize).map { UInt8(truncatingIfNeeded: $0 / 512) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(pattern))
        aio = try AioContext()
    }

    func makeDevice(readOnly: Bool = false, serial: String = "vblk-serial") throws -> (VirtioBlk, Virtqueue) {
        var options = FileOptions(filename: path)
        options.readOnly = readOnly
        let driver = try FileDriver(options: options, engine: aio)
        let node = BlockNode(nodeName: "disk", driverName: "file", driver: driver, readOnly: readOnly)
        try graph.add(node)
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        try VirtioBlk.claim(backend, deviceName: "vblk0", shareRW: false, incomingMigration: false)
        let device = VirtioBlk(backend: backend, memory: memory, serial: serial)
        let queue = try ring.makeQueue()
        device.activate(features: 0, queues: [queue], transport: link)
        return (device, queue)
    }

    /// Header at 0x10000, data at 0x11000, status at 0x20000; returns after completions ran.
    mutating func submit(_ device: VirtioBlk, kind: UInt32, sector: UInt64, dataLength: UInt32 = 0,
                         dataWritable: Bool = true, headerLength: UInt32 = 16) throws -> UInt8 {
        try memory.store(kind, at: 0x10000)
        try memory.store(UInt32(0), at: 0x10004)
        try memory.store(sector, at: 0x10008)
        try memory.store(UInt8(0xff), at: 0x20000)
        try ring.setDescriptor(0, address: 0x10000, length: headerLength, flags: Virtqueue.flagNext, next: 1)
        let dataFlags = Virtqueue.flagNext | (dataWritable ? Virtqueue.flagWrite : 0)
        if dataLength > 0 {
            try ring.setDescriptor(1, address: 0x11000, length: dataLength, flags: dataFlags, next: 2)
        } else {
            try ring.setDescriptor(1, address: 0x11000, length: 0, flags: dataFlags | Virtqueue.flagWrite, next: 2)
        }
        try ring.setDescriptor(2, address: 0x20000, length: 1, flags: Virtqueue.flagWrite)
        try ring.publish(0)
        device.processQueue(0)
        waitForCompletions()
        return try memory.load(UInt8.self, at: 0x20000)
    }

    func waitForCompletions() {
        while aio.inFlight > 0 {
            var descriptor = pollfd(fd: aio.eventFd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 1000)
            var counter: UInt64 = 0
            _ = read(aio.eventFd, &counter, 8)  // the event loop never reads it (edge-triggered); poll() needs it drained
            aio.processCompletions()
        }
    }

    @Test mutating func readsTheDisk() throws {
        let (device, _) = try makeDevice()
        #expect(try submit(device, kind: 0, sector: 3, dataLength: 1024) == 0)
        #expect(try memory.readBytes(at: 0x11000, count: 1024) == [UInt8](repeating: 3, count: 512) + [UInt8](repeating: 4, count: 512))
        #expect(try ring.usedElement(0).length == 1025)
    }

    /// Overlapping descriptors may add up to more than the used element's 32-bit length can
    /// report: such a read fails with IOERR instead of overflowing the count.
    @Test func aReadLongerThanTheUsedLengthCanCountFails() throws {
        let bigMemory = try GuestMemory(size: 1 << 30)
        var bigRing = RingBuilder(memory: bigMemory)
        let node = BlockNode(nodeName: "null", driverName: "null-co", driver: NullDriver(size: 8 << 30), readOnly: false)
        try graph.add(node)
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        let device = VirtioBlk(backend: backend, memory: bigMemory)
        let queue = try bigRing.makeQueue()
        device.activate(features: 0, queues: [queue], transport: link)
        try bigMemory.store(UInt32(0), at: 0x10000)          // VIRTIO_BLK_T_IN
        try bigMemory.store(UInt64(0), at: 0x10008)          // sector 0
        try bigMemory.store(UInt8(0xff), at: 0x20000)
        try bigRing.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 1)
        // Six writable descriptors of 768 MiB over the same guest memory: 4.5 GiB.
        for index: UInt16 in 1...6 {
            try bigRing.setDescriptor(index, address: 0x1000_0000, length: 0x3000_0000,
                                      flags: Virtqueue.flagNext | Virtqueue.flagWrite, next: index + 1)
        }
        try bigRing.setDescriptor(7, address: 0x20000, length: 1, flags: Virtqueue.flagWrite)
        try bigRing.publish(0)
        device.processQueue(0)
        #expect(try bigMemory.load(UInt8.self, at: 0x20000) == VirtioBlkRequest.Status.ioError.rawValue)
        #expect(try bigRing.usedElement(0).length == 1)
        #expect(link.errors.isEmpty)
    }

    @Test mutating func writesReachTheFile() throws {
        let (device, _) = try makeDevice()
        try memory.fill(0xab, at: 0x11000, count: 512)
        #expect(try submit(device, kind: 1, sector: 7, dataLength: 512, dataWritable: false) == 0)
        let contents = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(contents[7 * 512..<8 * 512].allSatisfy { $0 == 0xab })
        #expect(contents[6 * 512] == 6)
    }

    @Test(arguments: [UInt64(2047), UInt64(2048), UInt64.max / 512, UInt64.max])
    mutating func requestsBeyondTheEndFailWithIOError(sector: UInt64) throws {
        let (device, _) = try makeDevice()
        #expect(try submit(device, kind: 0, sector: sector, dataLength: 1024) == VirtioBlkRequest.Status.ioError.rawValue)
        #expect(link.errors.isEmpty)
    }

    @Test mutating func unalignedLengthFailsWithIOError() throws {
        let (device, _) = try makeDevice()
        #expect(try submit(device, kind: 0, sector: 0, dataLength: 100) == VirtioBlkRequest.Status.ioError.rawValue)
    }

    @Test mutating func writeToReadOnlyDiskFailsAndChangesNothing() throws {
        let (device, _) = try makeDevice(readOnly: true)
        #expect(device.deviceFeatures & VirtioBlkRequest.Feature.readOnly != 0)
        try memory.fill(0xab, at: 0x11000, count: 512)
        #expect(try submit(device, kind: 1, sector: 0, dataLength: 512, dataWritable: false) == VirtioBlkRequest.Status.ioError.rawValue)
        let contents = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(contents[0..<512].allSatisfy { $0 == 0 })
    }

    @Test mutating func unknownRequestTypeIsUnsupported() throws {
        let (device, _) = try makeDevice()
        #expect(try submit(device, kind: 99, sector: 0) == VirtioBlkRequest.Status.unsupported.rawValue)
    }

    @Test mutating func getIDReturnsTheSerial() throws {
        let (device, _) = try makeDevice(serial: "hello")
        #expect(try submit(device, kind: 8, sector: 0, dataLength: 20) == 0)
        #expect(try memory.readBytes(at: 0x11000, count: 20) == Array("hello".utf8) + [UInt8](repeating: 0, count: 15))
    }

    @Test mutating func writeZeroesZeroesTheRange() throws {
        let (device, _) = try makeDevice()
        try memory.store(UInt64(4), at: 0x11000)
        try memory.store(UInt32(2), at: 0x11008)
        try memory.store(UInt32(0), at: 0x1100c)
        #expect(try submit(device, kind: 13, sector: 0, dataLength: 16, dataWritable: false) == 0)
        let contents = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(contents[4 * 512..<6 * 512].allSatisfy { $0 == 0 })
        #expect(contents[6 * 512] == 6)
    }

    @Test mutating func discardWithUnmapFlagIsUnsupported() throws {
        let (device, _) = try makeDevice()
        try memory.store(UInt64(4), at: 0x11000)
        try memory.store(UInt32(2), at: 0x11008)
        try memory.store(UInt32(1), at: 0x1100c)
        #expect(try submit(device, kind: 11, sector: 0, dataLength: 16, dataWritable: false) == VirtioBlkRequest.Status.unsupported.rawValue)
    }

    /// While a request is in flight the device will look at the ring when it completes, so it
    /// tells the driver not to kick (avail_event far ahead); once idle it asks for kicks again.
    @Test mutating func kicksAreSuppressedOnlyWhileRequestsAreInFlight() throws {
        let (device, queue) = try makeDevice()
        queue.eventIndexEnabled = true
        let availEvent = ring.used + 4 + 8 * UInt64(ring.size)
        try memory.store(UInt32(0), at: 0x10000)
        try memory.store(UInt64(0), at: 0x10008)
        try ring.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 1)
        try ring.setDescriptor(1, address: 0x11000, length: 512, flags: Virtqueue.flagNext | Virtqueue.flagWrite, next: 2)
        try ring.setDescriptor(2, address: 0x20000, length: 1, flags: Virtqueue.flagWrite)
        try ring.publish(0)
        device.processQueue(0)
        #expect(try memory.load(UInt16.self, at: availEvent) == 1 &+ 0x7fff)
        waitForCompletions()
        #expect(try ring.usedIndex() == 1)
        #expect(try memory.load(UInt16.self, at: availEvent) == 1)
    }

    @Test mutating func shortHeaderBreaksTheDevice() throws {
        let (device, _) = try makeDevice()
        _ = try submit(device, kind: 0, sector: 0, dataLength: 512, headerLength: 8)
        #expect(link.errors == ["virtio-blk missing headers"])
    }

    @Test mutating func malformedRingBreaksTheDeviceInsteadOfCrashing() throws {
        let (device, _) = try makeDevice()
        try ring.setAvailIndex(100)
        device.processQueue(0)
        #expect(link.errors.count == 1)
        #expect(link.errors.first?.contains("avail index") == true)
    }
}
