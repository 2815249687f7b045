import CKVM
import Testing
@testable import KVM

/// KVM's dirty log and the VMM-write bitmap: what each sees, and that fetching clears.
@Suite struct DirtyTrackingTests {
    @Test func guestWritesShowInKvmsDirtyLogAndFetchingClearsIt() throws {
        let kvm = try Kvm()
        let vm = try kvm.createVirtualMachine()
        try vm.setIdentityMapAddress(0xfffb_c000)
        try vm.setTSSAddress(0xfffb_d000)
        let memory = try GuestMemory(size: 1 << 20)
        try vm.mapMemory(memory, slot: 0)
        let vcpu = try vm.createVcpu(id: 0)
        try vcpu.setCPUID(try kvm.supportedCPUID())
        try vm.setDirtyLogging(memory, slot: 0, enabled: true)
        _ = try vm.fetchDirtyLog(slot: 0, pageCount: memory.pageCount)
        try RealModeGuest.runUntilOut(vcpu: vcpu, memory: memory, writingPages: [5, 9, 14])
        let log = try vm.fetchDirtyLog(slot: 0, pageCount: memory.pageCount)
        #expect(log.isDirty(5) && log.isDirty(9) && log.isDirty(14))
        #expect(!log.isDirty(7) && !log.isDirty(200), "pages the guest did not touch stay clean")
        #expect(try memory.load(UInt8.self, at: 9 * 4096) == 10)
        #expect(try vm.fetchDirtyLog(slot: 0, pageCount: memory.pageCount).dirtyPages.allSatisfy { $0 < 2 },
                "fetched pages are cleared (at most the code and stack pages again)")
        // The VMM's own write to guest RAM: KVM does not see it, the VMM bitmap does (once enabled).
        try memory.store(UInt32(7), at: 20 * 4096)
        #expect(!memory.vmmWrites.take().isDirty(20), "not marked while tracking is off")
        memory.vmmWrites.enable()
        try memory.store(UInt32(7), at: 21 * 4096 + 4094)  // straddles pages 21 and 22
        #expect(!(try vm.fetchDirtyLog(slot: 0, pageCount: memory.pageCount).isDirty(21)))
        let vmm = memory.vmmWrites.take()
        #expect(vmm.dirtyPages == [21, 22])
        #expect(memory.vmmWrites.take().isEmpty)
        try vm.setDirtyLogging(memory, slot: 0, enabled: false)
        #expect(throws: KvmError.self) { try vm.fetchDirtyLog(slot: 0, pageCount: memory.pageCount) }
    }

    @Test func everyVmmWritePathMarksItsPages() throws {
        let memory = try GuestMemory(size: 64 << 12)
        memory.vmmWrites.enable()
        try memory.store(UInt64(1), at: 1 * 4096)
        try memory.storeUInt16(1, at: 2 * 4096)
        try memory.storeUInt32(1, at: 3 * 4096)
        try memory.writeBytes([1, 2, 3], at: 4 * 4096)
        try memory.fill(0xaa, at: 5 * 4096 + 100, count: 8192)  // pages 5, 6, 7
        memory.markWritten(at: 9 * 4096, length: 1)
        memory.markWritten(at: 64 << 12, length: 1)  // outside RAM: ignored
        #expect(memory.vmmWrites.take().dirtyPages == [1, 2, 3, 4, 5, 6, 7, 9])
        memory.vmmWrites.disable()
        try memory.store(UInt64(1), at: 1 * 4096)
        #expect(memory.vmmWrites.take().isEmpty)
    }

    @Test func pagesCopyOutAndInWithinRamOnly() throws {
        let memory = try GuestMemory(size: 3 * 4096 + 100)  // a short last page
        #expect(memory.pageCount == 4)
        try memory.fill(0x5a, at: 4096, count: 4096)
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { page.deallocate() }
        try memory.copyPage(1, into: page)
        #expect(page.allSatisfy { $0 == 0x5a })
        page.initializeMemory(as: UInt8.self, repeating: 0x33)
        try memory.fillPage(3, from: UnsafeRawBufferPointer(page))
        #expect(try memory.readBytes(at: 3 * 4096, count: 100) == [UInt8](repeating: 0x33, count: 100))
        #expect(throws: GuestMemoryError.self) { try memory.copyPage(4, into: page) }
        #expect(throws: GuestMemoryError.self) { try memory.copyPage(-1, into: page) }
        #expect(throws: GuestMemoryError.self) { try memory.fillPage(Int.max, from: UnsafeRawBufferPointer(page)) }
        let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 100, alignment: 8)
        defer { small.deallocate() }
        #expect(throws: GuestMemoryError.self) { try memory.copyPage(0, into: small) }
    }

    @Test func dirtyPageBitmapKeepsToItsPages() {
        var bitmap = DirtyPageBitmap(pageCount: 70, allDirty: true)
        #expect(bitmap.dirtyCount == 70)
        #expect(!bitmap.isDirty(70) && !bitmap.isDirty(-1))
        var other = DirtyPageBitmap(pageCount: 70)
        other.mark(69)
        other.mark(3)
        other.mark(70)  // outside: ignored
        #expect(other.dirtyPages == [3, 69])
        bitmap = DirtyPageBitmap(pageCount: 70, words: [1, ~0, 5])
        #expect(bitmap.dirtyPages == [0] + Array(64..<70))
        bitmap.formUnion(other)
        #expect(bitmap.dirtyPages == [0, 3] + Array(64..<70))
    }
}
