import KVM

// Additive (issue 12's speed work): the migration stream looks at a RAM page where it is, so an
// all-zero page is neither copied on the source nor on the destination.
extension Machine {
    /// Whether RAM page `index` reads all zero, looked at in place (QEMU's buffer_is_zero on the
    /// host page, no copy). Any thread; a page the guest writes meanwhile is dirtied and sent
    /// again (see GuestMemory.copyPage).
    public func ramPageIsZero(_ index: Int) throws(MachineError) -> Bool {
        guard index >= 0, index < ramPageCount else { throw MachineError("RAM page \(index): beyond the end of RAM") }
        let offset = index * Self.ramPageSize
        let length = min(Self.ramPageSize, ramSize - offset)
        do {
            let page = try memory.region(at: memory.guestBase + UInt64(offset), length: length)
            return Self.isZero(UnsafeRawBufferPointer(page))
        } catch {
            throw MachineError("RAM page \(index): \(error)")
        }
    }

    /// RAM page `index` where it is (4096 bytes; fewer for a short last page), for the migration
    /// stream to send from or receive into without a copy: the source only with the VM stopped
    /// and I/O drained (nothing changes it under the send), the destination before the VM runs.
    public func ramPage(_ index: Int) throws(MachineError) -> UnsafeMutableRawBufferPointer {
        guard index >= 0, index < ramPageCount else { throw MachineError("RAM page \(index): beyond the end of RAM") }
        let offset = index * Self.ramPageSize
        do {
            return try memory.region(at: memory.guestBase + UInt64(offset), length: min(Self.ramPageSize, ramSize - offset))
        } catch {
            throw MachineError("RAM page \(index): \(error)")
        }
    }

    /// Eight words at a time with one branch, which the optimizer turns into vector ORs; the
    /// first non-zero 64 bytes end it.
    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
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
