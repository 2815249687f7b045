import KVM

/// The part of a Machine a migration thread may touch off the loop: guest RAM page by page and
/// the dirty log (KVM's ioctl and the VMM-write bitmap's atomics are safe on any thread; see
/// GuestMemory.copyPage for what a copy of a page the guest is writing means). Everything else of
/// the Machine is loop-owned and reached through a LoopBound.
public struct GuestRam: Sendable {
    /// RAM access for the migration stream (page size 4096).
    public static let pageSize = DirtyPageBitmap.pageSize

    let vm: VirtualMachine
    let memory: GuestMemory
    let slot: UInt32

    public var size: Int { memory.size }

    /// RAM pages (the last one may be short if RAM is not a multiple of 4 KiB).
    public var pageCount: Int { memory.pageCount }

    /// KVM's log on for the RAM slot and the VMM-write bitmap on, both empty: the caller sends
    /// every page once (its bulk pass) and then what `fetchDirtyPages` reports.
    public func startDirtyTracking() throws(MachineError) {
        memory.vmmWrites.enable()
        do {
            try vm.setDirtyLogging(memory, slot: slot, enabled: true)
        } catch {
            memory.vmmWrites.disable()
            throw MachineError(error, context: "dirty tracking")
        }
    }

    /// KVM's log ∪ the pages svmm wrote, since the last fetch (or the start); both cleared.
    public func fetchDirtyPages() throws(MachineError) -> DirtyPageBitmap {
        var pages: DirtyPageBitmap
        do {
            pages = try vm.fetchDirtyLog(slot: slot, pageCount: memory.pageCount)
        } catch {
            throw MachineError(error, context: "dirty tracking")
        }
        pages.formUnion(memory.vmmWrites.take())
        return pages
    }

    public func stopDirtyTracking() {
        try? vm.setDirtyLogging(memory, slot: slot, enabled: false)  // only fails if the slot is gone
        memory.vmmWrites.disable()
    }

    public func readPage(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(MachineError) {
        do { try memory.copyPage(index, into: buffer) } catch { throw MachineError(error, context: "RAM page \(index)") }
    }

    public func writePage(_ index: Int, from buffer: UnsafeRawBufferPointer) throws(MachineError) {
        do { try memory.fillPage(index, from: buffer) } catch { throw MachineError(error, context: "RAM page \(index)") }
    }

    /// RAM page `index` where it is (4096 bytes; fewer for a short last page), for the migration
    /// stream to send from or receive into without a copy: the source only with the VM stopped
    /// and I/O drained (nothing changes it under the send), the destination before the VM runs.
    public func page(_ index: Int) throws(MachineError) -> UnsafeMutableRawBufferPointer {
        guard index >= 0, index < pageCount else { throw MachineError("RAM page \(index): beyond the end of RAM") }
        let offset = index * Self.pageSize
        do {
            return try memory.region(at: memory.guestBase + UInt64(offset), length: min(Self.pageSize, size - offset))
        } catch {
            throw MachineError("RAM page \(index): \(error)")
        }
    }

    /// Whether RAM page `index` reads all zero, looked at in place (QEMU's buffer_is_zero on the
    /// host page, no copy): the migration stream neither copies a zero page on the source nor on
    /// the destination. A page the guest writes meanwhile is dirtied and sent again.
    public func pageIsZero(_ index: Int) throws(MachineError) -> Bool {
        guard index >= 0, index < pageCount else { throw MachineError("RAM page \(index): beyond the end of RAM") }
        let offset = index * Self.pageSize
        let length = min(Self.pageSize, size - offset)
        do {
            let page = try memory.region(at: memory.guestBase + UInt64(offset), length: length)
            return Self.isZero(UnsafeRawBufferPointer(page))
        } catch {
            throw MachineError("RAM page \(index): \(error)")
        }
    }

    /// Eight words at a time with one branch, which the optimizer turns into vector ORs; the
    /// first non-zero 64 bytes end it.
    public static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let words = bytes.count / 8
        var index = 0
        while index + 8 <= words {
            var merged: UInt64 = 0
            for lane in 0..<8 { merged |= base.loadUnaligned(fromByteOffset: (index + lane) * 8, as: UInt64.self) }
            if merged != 0 { return false }
            index += 8
        }
        var offset = index * 8
        while offset < bytes.count {
            if base.load(fromByteOffset: offset, as: UInt8.self) != 0 { return false }
            offset += 1
        }
        return true
    }
}
