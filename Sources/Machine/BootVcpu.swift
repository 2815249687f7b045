import CKVM
import KVM

/// Creates vCPU 0 in the state PVH requires: 32-bit protected mode with flat segments, paging
/// off, `rip` at the PVH entry and `rbx` pointing at `hvm_start_info`.
enum BootVcpu {
    static func create(vm: VirtualMachine, boot: PvhBoot) throws(MachineError) -> Vcpu {
        do {
            let vcpu = try vm.createVcpu(id: 0)
            try vcpu.setCPUID(try vm.kvm.supportedCPUID())
            var sregs = try vcpu.getSpecialRegisters()
            sregs.cs = flatSegment(selector: 0x08, type: 0xb)
            for keyPath in [\kvm_sregs.ds, \.es, \.fs, \.gs, \.ss] {
                sregs[keyPath: keyPath] = flatSegment(selector: 0x10, type: 0x3)
            }
            sregs.cr0 = 0x11  // PE | ET
            sregs.cr4 = 0
            sregs.efer = 0
            try vcpu.setSpecialRegisters(sregs)
            var regs = kvm_regs()
            regs.rip = UInt64(boot.entry)
            regs.rbx = boot.startInfoAddress
            regs.rflags = 0x2
            try vcpu.setRegisters(regs)
            return vcpu
        } catch {
            throw MachineError(error, context: "setting up the boot vCPU")
        }
    }

    /// vCPU 0 with its CPUID only: an incoming migration loads the rest of its state.
    static func createForIncoming(vm: VirtualMachine) throws(MachineError) -> Vcpu {
        do {
            let vcpu = try vm.createVcpu(id: 0)
            try vcpu.setCPUID(try vm.kvm.supportedCPUID())
            return vcpu
        } catch {
            throw MachineError(error, context: "setting up the vCPU for an incoming migration")
        }
    }

    private static func flatSegment(selector: UInt16, type: UInt8) -> kvm_segment {
        var segment = kvm_segment()
        segment.base = 0
        segment.limit = 0xffff_ffff
        segment.selector = selector
        segment.type = type
        segment.present = 1
        segment.dpl = 0
        segment.db = 1
        segment.s = 1
        segment.l = 0
        segment.g = 1
        return segment
    }
}
