import KVM
@testable import Devices

/// Lays out a split virtqueue in a RAM buffer the way a driver (or a hostile one) would.
struct RingBuilder {
    let memory: GuestMemory
    let size: UInt16
    let descriptors: UInt64 = 0x1000
    let avail: UInt64 = 0x2000
    let used: UInt64 = 0x3000
    var availIndex: UInt16 = 0

    init(memory: GuestMemory, size: UInt16 = 8) {
        self.memory = memory
        self.size = size
    }

    func makeQueue(eventIndex: Bool = false) throws -> Virtqueue {
        let queue = Virtqueue(memory: memory, maxSize: size)
        queue.descriptorTable = descriptors
        queue.availRing = avail
        queue.usedRing = used
        queue.eventIndexEnabled = eventIndex
        try queue.validate()
        queue.isReady = true
        return queue
    }

    func setDescriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16 = 0, next: UInt16 = 0,
                       table: UInt64? = nil) throws {
        let base = (table ?? descriptors) + 16 * UInt64(index)
        try memory.store(address, at: base)
        try memory.store(length, at: base + 8)
        try memory.store(flags, at: base + 12)
        try memory.store(next, at: base + 14)
    }

    /// Publishes `head` in the avail ring and bumps the index.
    mutating func publish(_ head: UInt16) throws {
        try memory.store(head, at: avail + 4 + 2 * UInt64(availIndex % size))
        availIndex &+= 1
        try memory.store(availIndex, at: avail + 2)
    }

    func setAvailIndex(_ index: UInt16) throws {
        try memory.store(index, at: avail + 2)
    }

    func usedIndex() throws -> UInt16 { try memory.load(UInt16.self, at: used + 2) }

    func usedElement(_ slot: UInt16) throws -> (id: UInt32, length: UInt32) {
        let base = used + 4 + 8 * UInt64(slot % size)
        return (try memory.load(UInt32.self, at: base), try memory.load(UInt32.self, at: base + 4))
    }
}
