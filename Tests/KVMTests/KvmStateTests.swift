import CKVM
import Testing
@testable import KVM

/// Every piece of vCPU and VM state KVM keeps, through get → set → get on a real vCPU (after it
/// ran a few instructions, so the state is not only the reset values). Needs /dev/kvm: fails, never skips.
@Suite struct KvmStateTests {
    let kvm: Kvm
    let vm: VirtualMachine
    let memory: GuestMemory
    let vcpu: Vcpu

    init() throws {
        kvm = try Kvm()
        vm = try kvm.createVirtualMachine()
        try vm.setIdentityMapAddress(0xfffb_c000)
        try vm.setTSSAddress(0xfffb_d000)
        try vm.createIRQChip()
        try vm.createPIT2()
        memory = try GuestMemory(size: 1 << 20)
        try vm.mapMemory(memory, slot: 0)
        vcpu = try vm.createVcpu(id: 0)
        try vcpu.setCPUID(try kvm.supportedCPUID())
        try RealModeGuest.runUntilOut(vcpu: vcpu, memory: memory, writingPages: [5])
    }

    static func bytes<T>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    @Test func registersRoundTrip() throws {
        var regs = try vcpu.getRegisters()
        regs.rax = 0x1234_5678_9abc_def0
        regs.r15 = 42
        try vcpu.setRegisters(regs)
        #expect(Self.bytes(try vcpu.getRegisters()) == Self.bytes(regs))
        let sregs = try vcpu.getSpecialRegisters()
        try vcpu.setSpecialRegisters(sregs)
        #expect(Self.bytes(try vcpu.getSpecialRegisters()) == Self.bytes(sregs))
    }

    @Test func xsaveAndFpuRoundTrip() throws {
        #expect(kvm.checkExtension(KVM_CAP_XSAVE) > 0, "this KVM offers KVM_CAP_XSAVE")
        var xsave = try vcpu.getXSAVE()
        // MXCSR (offset 24 of the legacy area) with a rounding mode the reset value does not have;
        // the kernel takes it only with SSE in the header's XSTATE_BV (offset 512).
        withUnsafeMutableBytes(of: &xsave.region) { region in
            region.storeBytes(of: UInt32(0x3f80), toByteOffset: 24, as: UInt32.self)
            region.storeBytes(of: region.load(fromByteOffset: 512, as: UInt64.self) | 2, toByteOffset: 512, as: UInt64.self)
        }
        try vcpu.setXSAVE(xsave)
        let readBack = try vcpu.getXSAVE()
        #expect(withUnsafeBytes(of: readBack.region) { $0.load(fromByteOffset: 24, as: UInt32.self) } == 0x3f80)
        try vcpu.setXSAVE(readBack)
        #expect(Self.bytes(try vcpu.getXSAVE().region) == Self.bytes(readBack.region))
        // The FPU view (svmm's fallback for a KVM without XSAVE), x87 part: on this kernel
        // KVM_SET_FPU does not keep MXCSR (the XSAVE header's SSE bit is not set by it), so
        // svmm moves XSAVE wherever KVM_CAP_XSAVE is offered, as QEMU does.
        var fpu = try vcpu.getFPU()
        fpu.fcw = 0x0c7f  // round toward zero, all exceptions masked
        withUnsafeMutableBytes(of: &fpu.fpr) { $0.storeBytes(of: UInt64(0x1234_5678), toByteOffset: 0, as: UInt64.self) }
        try vcpu.setFPU(fpu)
        let fpuAgain = try vcpu.getFPU()
        #expect(fpuAgain.fcw == 0x0c7f)
        #expect(Self.bytes(fpuAgain.fpr) == Self.bytes(fpu.fpr))
    }

    @Test func xcrsAndDebugRegistersRoundTrip() throws {
        let xcrs = try vcpu.getXCRs()
        #expect(xcrs.nr_xcrs >= 1)
        try vcpu.setXCRs(xcrs)
        #expect(Self.bytes(try vcpu.getXCRs()) == Self.bytes(xcrs))
        var debug = try vcpu.getDebugRegisters()
        debug.db.0 = 0x1000
        debug.db.3 = 0x2000
        try vcpu.setDebugRegisters(debug)
        let again = try vcpu.getDebugRegisters()
        #expect(again.db.0 == 0x1000 && again.db.3 == 0x2000 && again.dr7 == debug.dr7)
    }

    @Test func lapicEventsAndMpStateRoundTrip() throws {
        var lapic = try vcpu.getLAPIC()
        // The task priority register (0x80) takes any value in its low byte.
        withUnsafeMutableBytes(of: &lapic.regs) { $0.storeBytes(of: UInt32(0x20), toByteOffset: 0x80, as: UInt32.self) }
        try vcpu.setLAPIC(lapic)
        let readBack = try vcpu.getLAPIC()
        #expect(withUnsafeBytes(of: readBack.regs) { $0.load(fromByteOffset: 0x80, as: UInt32.self) } == 0x20)
        // The processor priority (0xa0) follows from the TPR; from then on the state is a fixed point.
        #expect(withUnsafeBytes(of: readBack.regs) { $0.load(fromByteOffset: 0xa0, as: UInt32.self) } == 0x20)
        try vcpu.setLAPIC(readBack)
        #expect(Self.bytes(try vcpu.getLAPIC()) == Self.bytes(readBack))
        let events = try vcpu.getVcpuEvents()
        try vcpu.setVcpuEvents(events)
        #expect(Self.bytes(try vcpu.getVcpuEvents()) == Self.bytes(events))
        var mp = try vcpu.getMPState()
        #expect(mp.mp_state == UInt32(KVM_MP_STATE_RUNNABLE))
        mp.mp_state = UInt32(KVM_MP_STATE_HALTED)
        try vcpu.setMPState(mp)
        #expect(try vcpu.getMPState().mp_state == UInt32(KVM_MP_STATE_HALTED))
    }

    /// The batched probe (a prefix per KVM_GET_MSRS, skipping where KVM stops) finds exactly the
    /// MSRs that read back when each is tried on its own.
    @Test func readableMsrsAreTheOnesThatReadAlone() throws {
        let list = try kvm.msrIndexList()
        let alone = list.filter { (try? vcpu.getMSRs([$0]).count) == 1 }
        #expect(vcpu.readableMSRs(of: list) == alone)
        // An unreadable index in the middle is skipped, and what follows it still counts.
        let unreadable: UInt32 = 0xdead_beef
        #expect((try? vcpu.getMSRs([unreadable]).count) == 0)
        let mixed = Array(alone.prefix(3)) + [unreadable] + Array(alone.dropFirst(3))
        #expect(vcpu.readableMSRs(of: mixed) == alone)
    }

    @Test func everyReadableMsrRoundTrips() throws {
        let list = try kvm.msrIndexList()
        #expect(list.count > 10, "KVM_GET_MSR_INDEX_LIST lists the MSRs KVM saves")
        let readable = vcpu.readableMSRs(of: list)
        #expect(readable.contains(0x10), "IA32_TSC is saved")
        let saved = try vcpu.getMSRs(readable)
        #expect(saved.map(\.index) == readable)
        try vcpu.setMSRs(saved)
        let again = try vcpu.getMSRs(readable)
        for (before, after) in zip(saved, again) where before.index != 0x10 {
            #expect(before == after, "MSR 0x\(String(before.index, radix: 16))")
        }
        // The TSC goes on from what was set.
        let tsc = again.first { $0.index == 0x10 }!.value
        #expect(tsc >= saved.first { $0.index == 0x10 }!.value)
    }

    @Test func aRefusedMsrIsNamed() throws {
        #expect {
            try vcpu.setMSRs([MsrEntry(index: 0xdead_beef, value: 1)])
        } throws: { error in
            (error as? KvmError)?.description == "ioctl KVM_SET_MSRS: MSR 0xdeadbeef refused: EINVAL"
        }
    }

    @Test func irqchipPitAndClockRoundTrip() throws {
        for id in VirtualMachine.IrqChipID.allCases {
            let chip = try vm.getIrqChip(id)
            #expect(chip.chip_id == id.rawValue)
            try vm.setIrqChip(chip)
            #expect(Self.bytes(try vm.getIrqChip(id)) == Self.bytes(chip))
        }
        #expect(try vm.getIrqChip(.ioapic).chip.ioapic.base_address == 0xfec0_0000)
        let pit = try vm.getPIT2()
        try vm.setPIT2(pit)
        let pitAgain = try vm.getPIT2()
        // Everything but count_load_time (the last 8 bytes of a channel), which setting restarts.
        let channelSize = MemoryLayout<kvm_pit_channel_state>.stride
        let settled = { (state: kvm_pit_state2) in
            Self.bytes(state.channels).enumerated().filter { $0.offset % channelSize < channelSize - 8 }.map(\.element)
        }
        #expect(settled(pitAgain) == settled(pit))
        #expect(pitAgain.flags == pit.flags)
        var clock = kvm_clock_data()
        clock.clock = 5_000_000_000_000
        try vm.setClock(clock)
        let now = try vm.getClock().clock
        // It runs on from the value set (an hour is a margin no machine needs).
        #expect(now >= clock.clock && now < clock.clock + 3_600_000_000_000)
    }
}
