import CKVM
import Glibc
import KVM

/// Everything KVM keeps for one vCPU, as QEMU's kvm_arch_get_registers reads it: general and
/// special registers, XSAVE (or the FPU without KVM_CAP_XSAVE), XCRs, debug registers, the MSRs
/// KVM saves, the LAPIC, pending events and the MP state. Taken and applied on the vCPU's own
/// thread while it is parked (VcpuRunner's saveState/restoreState).
struct VcpuState: Sendable {
    var regs: kvm_regs
    var sregs: kvm_sregs
    var xsave: kvm_xsave?
    var fpu: kvm_fpu?
    var xcrs: kvm_xcrs?
    var debugRegs: kvm_debugregs
    var lapic: kvm_lapic_state
    var events: kvm_vcpu_events
    var mpState: kvm_mp_state
    var msrs: [MsrEntry]

    /// `msrIndices`: KVM_GET_MSR_INDEX_LIST filtered to what this vCPU reads back.
    static func capture(_ vcpu: Vcpu, msrIndices: [UInt32], hasXsave: Bool, hasXcrs: Bool) throws(KvmError) -> VcpuState {
        let msrs = try vcpu.getMSRs(msrIndices)
        guard msrs.count == msrIndices.count else {
            throw KvmError("ioctl KVM_GET_MSRS: MSR 0x\(String(msrIndices[msrs.count], radix: 16)) unreadable", errno: EINVAL)
        }
        return VcpuState(
            regs: try vcpu.getRegisters(), sregs: try vcpu.getSpecialRegisters(),
            xsave: hasXsave ? try vcpu.getXSAVE() : nil, fpu: hasXsave ? nil : try vcpu.getFPU(),
            xcrs: hasXcrs ? try vcpu.getXCRs() : nil, debugRegs: try vcpu.getDebugRegisters(),
            lapic: try vcpu.getLAPIC(), events: try vcpu.getVcpuEvents(), mpState: try vcpu.getMPState(), msrs: msrs)
    }

    /// In QEMU's kvm_arch_put_registers order: registers, XSAVE/FPU, XCRs, special registers
    /// (which carry the APIC base), MSRs, MP state, LAPIC, events, debug registers. The TSC
    /// deadline MSR only sticks once the LAPIC is in TSC-deadline mode, so it is written again last.
    func apply(to vcpu: Vcpu) throws(KvmError) {
        try vcpu.setRegisters(regs)
        if let xsave { try vcpu.setXSAVE(xsave) }
        if let fpu { try vcpu.setFPU(fpu) }
        if let xcrs { try vcpu.setXCRs(xcrs) }
        try vcpu.setSpecialRegisters(sregs)
        try vcpu.setMSRs(msrs)
        try vcpu.setMPState(mpState)
        try vcpu.setLAPIC(lapic)
        try vcpu.setVcpuEvents(Self.settable(events))
        try vcpu.setDebugRegisters(debugRegs)
        try vcpu.setMSRs(msrs.filter { $0.index == Self.msrTscDeadline })
    }

    static let msrTscDeadline: UInt32 = 0x6e0

    /// KVM_SET_VCPU_EVENTS applies the parts named in `flags`: NMI and SIPI state and the
    /// interrupt shadow as QEMU's kvm_put_vcpu_events does (the shadow is valid by default).
    private static func settable(_ events: kvm_vcpu_events) -> kvm_vcpu_events {
        var copy = events
        copy.flags = UInt32(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR)
            | (events.flags & UInt32(KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM))
        return copy
    }
}
