import KVM

/// A split virtqueue (virtio 1.x, section 2.7) as seen by the device, with indirect descriptors
/// and EVENT_IDX. Every index and address read from guest memory is checked before use.
public final class Virtqueue {
    public static let descriptorSize: UInt64 = 16
    static let flagNext: UInt16 = 1
    static let flagWrite: UInt16 = 2
    static let flagIndirect: UInt16 = 4
    static let availFlagNoInterrupt: UInt16 = 1

    let memory: GuestMemory
    public let maxSize: UInt16
    public var size: UInt16
    public var isReady = false
    public var descriptorTable: UInt64 = 0
    public var availRing: UInt64 = 0
    public var usedRing: UInt64 = 0
    public var eventIndexEnabled = false
    public internal(set) var lastAvailIndex: UInt16 = 0
    public internal(set) var usedIndex: UInt16 = 0
    var signalledUsedIndex: UInt16 = 0

    public init(memory: GuestMemory, maxSize: UInt16) {
        self.memory = memory
        self.maxSize = maxSize
        self.size = maxSize
    }

    public func reset() {
        size = maxSize
        isReady = false
        descriptorTable = 0
        availRing = 0
        usedRing = 0
        lastAvailIndex = 0
        usedIndex = 0
        signalledUsedIndex = 0
    }

    /// Checks the layout the driver configured before the queue goes live.
    public func validate() throws(VirtqueueError) {
        let count = UInt64(size)
        let rings: [(UInt64, UInt64)] = [
            (descriptorTable, Self.descriptorSize * count),
            (availRing, 6 + 2 * count),
            (usedRing, 6 + 8 * count),
        ]
        for (address, length) in rings where !memory.contains(address, length: length) {
            throw .ringOutsideMemory(address)
        }
    }

    /// The next available chain, or nil when the driver has published nothing new.
    public func pop() throws(VirtqueueError) -> DescriptorChain? {
        let available = try load(UInt16.self, availRing + 2)
        if available == lastAvailIndex { return nil }
        if available &- lastAvailIndex > size {
            throw .availIndexJump(available: available, lastSeen: lastAvailIndex, queueSize: size)
        }
        GuestMemory.acquireFence()
        let head = try load(UInt16.self, availRing + 4 + 2 * UInt64(lastAvailIndex % size))
        guard head < size else { throw .headOutOfRange(head) }
        let chain = try walkChain(head: head)
        lastAvailIndex &+= 1
        return chain
    }

    /// True when the driver published chains we have not popped yet.
    public func hasAvailable() throws(VirtqueueError) -> Bool {
        try load(UInt16.self, availRing + 2) != lastAvailIndex
    }

    static let usedFlagNoNotify: UInt16 = 1

    /// Asks the driver to kick (again) for the next chain it publishes, or — while the device will
    /// look at the ring anyway, e.g. when a request completes — not to bother. With EVENT_IDX the
    /// avail_event index says so (a far-away index silences kicks); without it, VRING_USED_F_NO_NOTIFY.
    /// After enabling, callers re-check `hasAvailable()` to close the race with the driver.
    public func setNotification(enabled: Bool) throws(VirtqueueError) {
        if eventIndexEnabled {
            try store(enabled ? lastAvailIndex : lastAvailIndex &+ 0x7fff, usedRing + 4 + 8 * UInt64(size))
        } else {
            try store(enabled ? 0 : Self.usedFlagNoNotify, usedRing)
        }
        GuestMemory.fullFence()
    }

    /// Returns a finished chain to the driver with the number of bytes written into it.
    public func pushUsed(head: UInt16, length: UInt32) throws(VirtqueueError) {
        let slot = usedRing + 4 + 8 * UInt64(usedIndex % size)
        try store(UInt32(head), slot)
        try store(length, slot + 4)
        GuestMemory.releaseFence()
        usedIndex &+= 1
        try store(usedIndex, usedRing + 2)
    }

    /// Whether the driver wants an interrupt for the chains used since the last call.
    public func needsNotification() throws(VirtqueueError) -> Bool {
        GuestMemory.fullFence()
        let previous = signalledUsedIndex
        signalledUsedIndex = usedIndex
        if eventIndexEnabled {
            let usedEvent = try load(UInt16.self, availRing + 4 + 2 * UInt64(size))
            // vring_need_event: did the index step past used_event since the last signal?
            return usedIndex &- usedEvent &- 1 < usedIndex &- previous
        }
        return try load(UInt16.self, availRing) & Self.availFlagNoInterrupt == 0
    }

    /// The last chain's segment array, refilled for the next chain: once the device is done with
    /// a chain (before it pops the next), its buffer is unique again and popping allocates nothing.
    private var segmentBuffer: [DescriptorChain.Segment] = []

    private func walkChain(head: UInt16) throws(VirtqueueError) -> DescriptorChain {
        var segments = segmentBuffer
        segmentBuffer = []
        segments.removeAll(keepingCapacity: true)
        defer { segmentBuffer = segments }
        var table = descriptorTable
        var tableSize = UInt32(size)
        var index = head
        var inIndirect = false
        var seenWritable = false
        while true {
            let descriptor = try readDescriptor(table: table, index: index)
            if descriptor.flags & Self.flagIndirect != 0 {
                // Only a chain's first descriptor may point at an indirect table, and tables don't nest.
                guard !inIndirect, segments.isEmpty else { throw .nestedIndirect }
                (table, tableSize) = try indirectTable(descriptor)
                inIndirect = true
                index = 0
                continue
            }
            let writable = descriptor.flags & Self.flagWrite != 0
            if seenWritable && !writable { throw .writableBeforeReadable }
            seenWritable = seenWritable || writable
            guard memory.contains(descriptor.address, length: UInt64(descriptor.length)) else {
                throw .descriptorOutsideMemory(address: descriptor.address, length: descriptor.length)
            }
            segments.append(.init(address: descriptor.address, length: descriptor.length, isWritable: writable))
            // A chain visits each descriptor of its table at most once; more means a loop.
            if segments.count > Int(tableSize) { throw .chainTooLong(limit: Int(tableSize)) }
            if descriptor.flags & Self.flagNext == 0 { break }
            guard UInt32(descriptor.next) < tableSize else { throw .descriptorOutOfRange(descriptor.next) }
            index = descriptor.next
        }
        return DescriptorChain(head: head, segments: segments)
    }

    private func indirectTable(_ descriptor: RawDescriptor) throws(VirtqueueError) -> (UInt64, UInt32) {
        let length = descriptor.length
        guard length > 0, UInt64(length) % Self.descriptorSize == 0, length / 16 <= 0x10000 else {
            throw .badIndirectTable(length: length)
        }
        guard memory.contains(descriptor.address, length: UInt64(length)) else {
            throw .descriptorOutsideMemory(address: descriptor.address, length: length)
        }
        return (descriptor.address, length / 16)
    }

    private struct RawDescriptor {
        let address: UInt64
        let length: UInt32
        let flags: UInt16
        let next: UInt16
    }

    private func readDescriptor(table: UInt64, index: UInt16) throws(VirtqueueError) -> RawDescriptor {
        let base = table + Self.descriptorSize * UInt64(index)
        return RawDescriptor(
            address: try load(UInt64.self, base),
            length: try load(UInt32.self, base + 8),
            flags: try load(UInt16.self, base + 12),
            next: try load(UInt16.self, base + 14))
    }

    // Single-instruction accesses: the driver reads and writes these concurrently.

    private func load(_ type: UInt16.Type, _ address: UInt64) throws(VirtqueueError) -> UInt16 {
        do { return try memory.loadUInt16(at: address) } catch { throw .ringOutsideMemory(address) }
    }

    private func load(_ type: UInt32.Type, _ address: UInt64) throws(VirtqueueError) -> UInt32 {
        do { return try memory.loadUInt32(at: address) } catch { throw .ringOutsideMemory(address) }
    }

    private func load(_ type: UInt64.Type, _ address: UInt64) throws(VirtqueueError) -> UInt64 {
        do { return try memory.loadUInt64(at: address) } catch { throw .ringOutsideMemory(address) }
    }

    private func store(_ value: UInt16, _ address: UInt64) throws(VirtqueueError) {
        do { try memory.storeUInt16(value, at: address) } catch { throw .ringOutsideMemory(address) }
    }

    private func store(_ value: UInt32, _ address: UInt64) throws(VirtqueueError) {
        do { try memory.storeUInt32(value, at: address) } catch { throw .ringOutsideMemory(address) }
    }
}
