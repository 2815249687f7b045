import Block
import Foundation
import Glibc
import KVM
import Testing
@testable import Devices

/// virtio-blk's failed requests across a migration and its run state: a write that blkdebug fails
/// under werror=stop is kept, saved with the device's state, restored on a second device whose
/// disk works and written there once the VM runs; a loaded list a hostile stream made up is
/// refused naming the field. While the VM is stopped the device takes no request from its ring.
@Suite struct VirtioBlkFailedRequestTests {
    typealias Register = VirtioMmioTransport.Register
    let memory: GuestMemory
    let graph = BlockGraph()
    let opener: BlockNodeOpener

    init() throws {
        memory = try GuestMemory(size: 1 << 20)
        let aio = try AioContext()
        opener = BlockNodeOpener(graph: graph) { _ throws(BlockError) in aio }
    }

    /// A raw node over a 1 MiB null-co disk, with a blkdebug node between them that fails the first
    /// write with ENOSPC if `failing`.
    func makeTransport(failing: Bool) throws -> VirtioMmioTransport {
        let name = "n\(UUID().uuidString.prefix(8))"
        let null: [String: OptionValue] = ["driver": .string("null-co"), "size": .int(1 << 20), "node-name": .string(name)]
        // raw raises write_aio on its file child, as in QEMU (blkdebug sees the event there).
        let blkdebug: [String: OptionValue] = [
            "driver": .string("blkdebug"), "image": .object(null),
            "inject-error": .array([.object(["event": .string("write_aio"), "errno": .int(Int64(ENOSPC)), "once": .bool(true)])]),
        ]
        var tree: [String: OptionValue] = ["driver": .string("raw"), "file": .object(failing ? blkdebug : null)]
        tree["node-name"] = .string("top\(name)")
        let node = try opener.open(try BlockdevOptions(tree, fromCommandLine: false))
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        try VirtioBlk.claim(backend, deviceName: "vblk0", shareRW: false, incomingMigration: false)
        backend.onWriteError = .stop
        return try VirtioMmioTransport(device: VirtioBlk(backend: backend, memory: memory, serial: "s", id: "vblk0"), memory: memory)
    }

    /// Features, queue 0 of 8 at 0x1000/0x2000/0x3000, DRIVER_OK.
    func bringUp(_ transport: VirtioMmioTransport) {
        func write(_ register: Register, _ value: UInt32) { transport.write(offset: register.rawValue, size: 4, value: UInt64(value)) }
        write(.status, 1)
        write(.status, 3)
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

    /// The chain at descriptors 3·n … (buffers at 0x10000 + 0x3000·n): a 4 KiB WRITE of 0xab bytes at `sector`, published.
    func publishWrite(chain n: UInt16, sector: UInt64) throws {
        let header = 0x10000 + 0x3000 * UInt64(n), data = header + 0x1000, status = header + 0x2000
        try memory.store(UInt32(1), at: header)
        try memory.store(UInt64(sector), at: header + 8)
        try memory.writeBytes([UInt8](repeating: 0xab, count: 4096)[...], at: data)
        try memory.store(UInt8(0xff), at: status)
        let first = 3 * n
        func descriptor(_ index: UInt16, _ address: UInt64, _ length: UInt32, _ flags: UInt16) throws {
            let base = 0x1000 + 16 * UInt64(index)
            try memory.store(address, at: base)
            try memory.store(length, at: base + 8)
            try memory.store(flags, at: base + 12)
            try memory.store(index + 1, at: base + 14)
        }
        try descriptor(first, header, 16, Virtqueue.flagNext)
        try descriptor(first + 1, data, 4096, Virtqueue.flagNext)
        try descriptor(first + 2, status, 1, Virtqueue.flagWrite)
        let index = try memory.load(UInt16.self, at: 0x2002)
        try memory.store(first, at: 0x2004 + 2 * UInt64(index % 8))
        try memory.store(index &+ 1, at: 0x2002)
    }

    func usedIndex() throws -> UInt16 { try memory.load(UInt16.self, at: 0x3002) }

    @Test func aFailedWriteMigratesAndIsWrittenWhenTheDestinationRuns() throws {
        let source = try makeTransport(failing: true)
        bringUp(source)
        let sourceBlk = source.device as! VirtioBlk
        try publishWrite(chain: 0, sector: 8)
        source.notify(queue: 0)
        try waitUntil { sourceBlk.requestsAwaitingRetry == 1 }
        #expect(try sourceBlk.requestsInFlight == 0 && usedIndex() == 0)
        let state = try sourceBlk.save()
        #expect(state.failedRequests == [VirtioBlkFailedRequestState(head: 0, kind: 1, sector: 8, segments: [
            .init(address: 0x10000, length: 16, isWritable: false), .init(address: 0x11000, length: 4096, isWritable: false),
            .init(address: 0x12000, length: 1, isWritable: true),
        ])])

        let destination = try makeTransport(failing: false)
        let blk = destination.device as! VirtioBlk
        blk.vmStateChanged(running: false)  // an incoming migration's devices wait for the VM to run
        try blk.restore(state)
        try destination.restore(source.save())
        try destination.queues[0].restore(source.queues[0].save())
        try blk.checkRestoredRequests()
        #expect(try blk.requestsAwaitingRetry == 1 && blk.save() == state)
        blk.vmStateChanged(running: true)
        try waitUntil { (try? usedIndex()) == 1 }
        #expect(try blk.requestsAwaitingRetry == 0 && memory.load(UInt8.self, at: 0x12000) == 0)
        #expect(blk.backend.stats.operations[BlockAcctType.write.rawValue] == 1)
    }

    @Test func aStoppedDeviceTakesNoRequestUntilItRunsAgain() throws {
        let transport = try makeTransport(failing: false)
        bringUp(transport)
        let blk = transport.device as! VirtioBlk
        blk.vmStateChanged(running: false)
        try publishWrite(chain: 1, sector: 0)
        transport.notify(queue: 0)
        #expect(transport.queues[0].lastAvailIndex == 0 && blk.requestsInFlight == 0)
        blk.vmStateChanged(running: true)
        transport.notify(queue: 0)
        try waitUntil { (try? usedIndex()) == 1 }
    }

    @Test func hostileFailedRequestsAreRefusedNamingTheField() throws {
        let transport = try makeTransport(failing: false)
        let blk = transport.device as! VirtioBlk
        let good = VirtioBlkFailedRequestState(head: 0, kind: 1, sector: 8, segments: [
            .init(address: 0x10000, length: 16, isWritable: false), .init(address: 0x11000, length: 4096, isWritable: false),
            .init(address: 0x12000, length: 1, isWritable: true),
        ])
        func refusal(_ requests: [VirtioBlkFailedRequestState]) -> String {
            var state = (try? blk.save())!
            state.failedRequests = requests
            do { try blk.restore(state); return "accepted" } catch { return "\(error)" }
        }
        func changed(_ change: (inout VirtioBlkFailedRequestState) -> Void) -> VirtioBlkFailedRequestState {
            var request = good
            change(&request)
            return request
        }
        #expect(refusal([good]) == "accepted")
        #expect(refusal([good, good]) == "virtio-blk: field 'rq[1].head': virtio-blk 'vblk0': head 0 is in the list twice")
        #expect(refusal((0..<129).map { head in changed { $0.head = UInt16(head) } }) ==
                "virtio-blk: field 'rq': virtio-blk 'vblk0': 129 requests, more than the queue size 128")
        #expect(refusal([changed { $0.head = 200 }]) == "virtio-blk: field 'rq[0].head': virtio-blk 'vblk0': 200 is outside a queue of at most 128")
        #expect(refusal([changed { $0.sector = 2045 }]) ==
                "virtio-blk: field 'rq[0].sector': virtio-blk 'vblk0': 4096 bytes at sector 2045 are not inside the disk of 2048 sectors")
        #expect(refusal([changed { $0.sector = UInt64.max }]).contains("are not inside the disk"))
        #expect(refusal([changed { $0.kind = 8 }]) == "virtio-blk: field 'rq[0].type': virtio-blk 'vblk0': 8 is not a request the block layer fails")
        #expect(refusal([changed { $0.segments[1].address = 0xffff_f000 }]) ==
                "virtio-blk: field 'rq[0].segments[1]': virtio-blk 'vblk0': 0xfffff000 (+4096) is outside guest RAM")
        #expect(refusal([changed { $0.segments.swapAt(1, 2) }]) ==
                "virtio-blk: field 'rq[0].segments[2]': virtio-blk 'vblk0': a readable segment after a writable one")
        #expect(refusal([changed { $0.segments.removeFirst(2) }]).contains("no request header or status byte"))
        #expect(refusal([changed { $0.segments = [] }]) == "virtio-blk: field 'rq[0].segments': virtio-blk 'vblk0': 0 segments (1 to 65536)")
        // Restored on a device the driver never set up: refused once the transport is in.
        #expect(refusal([good]) == "accepted")
        #expect(throws: DeviceStateError(section: "virtio-blk", field: "rq", "virtio-blk 'vblk0': 1 requests on a device the driver has not set up")) {
            try blk.checkRestoredRequests()
        }
    }

    /// Serves the block layer's deferred completions (blkdebug and null-co complete through runSoon
    /// or at once) until `condition` holds.
    func waitUntil(_ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(5)
        while try !condition() {
            guard Date() < deadline else { Issue.record("condition not reached"); return }
            usleep(1000)
        }
    }
}
