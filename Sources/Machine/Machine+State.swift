import KVM

// The contract the Migration module codes against (issue 12). Compatible additions to the brief's
// shape: `StateSection.label`, `start(incoming:onStop:)` in Machine.swift, and the rule for which
// thread may call what (below).
//
// Threads: `saveState`, `loadState`, `startDirtyTracking` and `stopDirtyTracking` run on the
// loop. `fetchDirtyPages`, `readRamPage` and `writeRamPage` may run on a migration worker thread
// (KVM's dirty-log ioctl and the VMM-write bitmap's atomics are safe there; see GuestMemory.copyPage).
extension Machine {
    /// RAM access for the migration stream (page size 4096).
    public static let ramPageSize = DirtyPageBitmap.pageSize

    public var ramSize: Int { memory.size }

    /// RAM pages (the last one may be short if RAM is not a multiple of 4 KiB).
    public var ramPageCount: Int { memory.pageCount }

    /// KVM's log on for the RAM slot and the VMM-write bitmap on, both empty: the caller sends
    /// every page once (its bulk pass) and then what `fetchDirtyPages` reports.
    public func startDirtyTracking() throws(MachineError) {
        memory.vmmWrites.enable()
        do {
            try vm.setDirtyLogging(memory, slot: Self.ramSlot, enabled: true)
        } catch {
            memory.vmmWrites.disable()
            throw MachineError("dirty tracking: \(error)")
        }
    }

    /// KVM's log ∪ the pages svmm wrote, since the last fetch (or the start); both cleared.
    public func fetchDirtyPages() throws(MachineError) -> DirtyPageBitmap {
        var pages: DirtyPageBitmap
        do {
            pages = try vm.fetchDirtyLog(slot: Self.ramSlot, pageCount: memory.pageCount)
        } catch {
            throw MachineError("dirty tracking: \(error)")
        }
        pages.formUnion(memory.vmmWrites.take())
        return pages
    }

    public func stopDirtyTracking() {
        try? vm.setDirtyLogging(memory, slot: Self.ramSlot, enabled: false)  // only fails if the slot is gone
        memory.vmmWrites.disable()
    }

    public func readRamPage(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(MachineError) {
        do { try memory.copyPage(index, into: buffer) } catch { throw MachineError("RAM page \(index): \(error)") }
    }

    public func writeRamPage(_ index: Int, from buffer: UnsafeRawBufferPointer) throws(MachineError) {
        do { try memory.fillPage(index, from: buffer) } catch { throw MachineError("RAM page \(index): \(error)") }
    }

    /// The VM is stopped (vCPUs parked, block I/O drained). Called on the loop.
    public func saveState() throws(MachineError) -> [StateSection] {
        throw MachineError("saveState: not implemented yet")
    }

    /// On a destination created with the same config, before its vCPUs first enter the guest.
    /// Refuses a missing/unknown/duplicate section, a wrong version or a bad value with a message naming the section.
    public func loadState(_ sections: [StateSection]) throws(MachineError) {
        throw MachineError("loadState: not implemented yet")
    }
}
