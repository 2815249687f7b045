import KVM
import Testing
@testable import Devices

@Suite struct VirtqueueTests {
    let memory: GuestMemory
    var ring: RingBuilder

    init() throws {
        memory = try GuestMemory(size: 1 << 20)
        ring = RingBuilder(memory: memory)
    }

    @Test mutating func popsAWellFormedChainInOrder() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 3)
        try ring.setDescriptor(3, address: 0x11000, length: 4096, flags: Virtqueue.flagNext | Virtqueue.flagWrite, next: 5)
        try ring.setDescriptor(5, address: 0x12000, length: 1, flags: Virtqueue.flagWrite)
        try ring.publish(0)
        let chain = try #require(try queue.pop())
        #expect(chain.head == 0)
        #expect(chain.segments.map(\.address) == [0x10000, 0x11000, 0x12000])
        #expect(chain.readableLength == 16)
        #expect(chain.writableLength == 4097)
        #expect(try queue.pop() == nil)
    }

    @Test mutating func usedRingGetsHeadAndLength() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(2, address: 0x10000, length: 16)
        try ring.publish(2)
        _ = try queue.pop()
        try queue.pushUsed(head: 2, length: 77)
        #expect(try ring.usedIndex() == 1)
        #expect(try ring.usedElement(0) == (2, 77))
    }

    @Test mutating func descriptorOutsideRAMIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: UInt64(1 << 20) - 8, length: 16)
        try ring.publish(0)
        #expect(throws: VirtqueueError.descriptorOutsideMemory(address: UInt64(1 << 20) - 8, length: 16)) { try queue.pop() }
    }

    @Test mutating func addressPlusLengthOverflowIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: UInt64.max - 0xfff, length: 0x2000)
        try ring.publish(0)
        #expect(throws: VirtqueueError.self) { try queue.pop() }
    }

    @Test mutating func descriptorLoopIsCaught() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: 0x10000, length: 0, flags: Virtqueue.flagNext, next: 1)
        try ring.setDescriptor(1, address: 0x10000, length: 0, flags: Virtqueue.flagNext, next: 0)
        try ring.publish(0)
        #expect(throws: VirtqueueError.chainTooLong(limit: 8)) { try queue.pop() }
    }

    @Test mutating func nextBeyondTableIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 200)
        try ring.publish(0)
        #expect(throws: VirtqueueError.descriptorOutOfRange(200)) { try queue.pop() }
    }

    @Test mutating func availIndexJumpingPastQueueSizeIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.setAvailIndex(9)
        #expect(throws: VirtqueueError.availIndexJump(available: 9, lastSeen: 0, queueSize: 8)) { try queue.pop() }
    }

    @Test mutating func headBeyondQueueIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.publish(8)
        #expect(throws: VirtqueueError.headOutOfRange(8)) { try queue.pop() }
    }

    @Test mutating func readableAfterWritableIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: 0x10000, length: 1, flags: Virtqueue.flagNext | Virtqueue.flagWrite, next: 1)
        try ring.setDescriptor(1, address: 0x10000, length: 16)
        try ring.publish(0)
        #expect(throws: VirtqueueError.writableBeforeReadable) { try queue.pop() }
    }

    @Test mutating func indirectTableIsFollowed() throws {
        let queue = try ring.makeQueue()
        let table: UInt64 = 0x20000
        try ring.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 1, table: table)
        try ring.setDescriptor(1, address: 0x11000, length: 1, flags: Virtqueue.flagWrite, table: table)
        try ring.setDescriptor(4, address: table, length: 32, flags: Virtqueue.flagIndirect)
        try ring.publish(4)
        let chain = try #require(try queue.pop())
        #expect(chain.head == 4)
        #expect(chain.segments.count == 2)
    }

    @Test mutating func indirectChainLongerThanItsTableIsCaught() throws {
        let queue = try ring.makeQueue()
        let table: UInt64 = 0x20000
        // A two-entry table whose entries point at each other: a loop inside the indirect table.
        try ring.setDescriptor(0, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 1, table: table)
        try ring.setDescriptor(1, address: 0x10000, length: 16, flags: Virtqueue.flagNext, next: 0, table: table)
        try ring.setDescriptor(0, address: table, length: 32, flags: Virtqueue.flagIndirect)
        try ring.publish(0)
        #expect(throws: VirtqueueError.chainTooLong(limit: 2)) { try queue.pop() }
    }

    @Test mutating func badIndirectTableLengthIsRejected() throws {
        let queue = try ring.makeQueue()
        try ring.setDescriptor(0, address: 0x20000, length: 20, flags: Virtqueue.flagIndirect)
        try ring.publish(0)
        #expect(throws: VirtqueueError.badIndirectTable(length: 20)) { try queue.pop() }
    }

    @Test mutating func nestedIndirectIsRejected() throws {
        let queue = try ring.makeQueue()
        let table: UInt64 = 0x20000
        try ring.setDescriptor(0, address: table, length: 16, flags: Virtqueue.flagIndirect, table: table)
        try ring.setDescriptor(0, address: table, length: 16, flags: Virtqueue.flagIndirect)
        try ring.publish(0)
        #expect(throws: VirtqueueError.nestedIndirect) { try queue.pop() }
    }

    @Test func ringsOutsideRAMFailValidation() throws {
        let queue = Virtqueue(memory: memory, maxSize: 8)
        queue.descriptorTable = 0x1000
        queue.availRing = 0x2000
        queue.usedRing = UInt64(1 << 20) - 16
        #expect(throws: VirtqueueError.ringOutsideMemory(UInt64(1 << 20) - 16)) { try queue.validate() }
    }

    @Test mutating func eventIndexSuppressesInterruptsUntilUsedEventIsPassed() throws {
        let queue = try ring.makeQueue(eventIndex: true)
        // used_event lives after the avail ring's entries.
        try memory.store(UInt16(1), at: ring.avail + 4 + 2 * 8)
        for head: UInt16 in 0..<3 {
            try ring.setDescriptor(head, address: 0x10000, length: 16)
            try ring.publish(head)
        }
        var notifications: [Bool] = []
        for _ in 0..<3 {
            let chain = try #require(try queue.pop())
            try queue.pushUsed(head: chain.head, length: 0)
            notifications.append(try queue.needsNotification())
        }
        // The driver asked to hear when the used index passes 1, i.e. becomes 2.
        #expect(notifications == [false, true, false])
    }

    @Test mutating func noInterruptFlagIsHonouredWithoutEventIndex() throws {
        let queue = try ring.makeQueue()
        try memory.store(Virtqueue.availFlagNoInterrupt, at: ring.avail)
        try ring.setDescriptor(0, address: 0x10000, length: 16)
        try ring.publish(0)
        _ = try queue.pop()
        try queue.pushUsed(head: 0, length: 0)
        #expect(try queue.needsNotification() == false)
    }
}
