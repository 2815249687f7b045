import CKVM
import KVM

/// Checks on loaded KVM state beyond what the kernel itself refuses (KVM_SET_SREGS checks CR0,
/// CR4 and EFER; KVM_SET_XSAVE the feature bits; KVM_SET_MSRS each MSR): the values that would
/// be taken as they are, each refused with the section and field named.
enum MachineStateChecks {
    /// KVM's default IOAPIC address, where QEMU's microvm and svmm's device tree put it.
    static let ioapicBase: UInt64 = 0xfec0_0000

    private static func refuse(_ section: String, _ instance: UInt32, _ field: String, _ problem: String) -> MachineError {
        MachineError("State section '\(section)' instance \(instance): field '\(field)': \(problem)")
    }

    static func check(vcpu: VcpuState) throws(MachineError) {
        guard vcpu.mpState.mp_state <= UInt32(KVM_MP_STATE_SIPI_RECEIVED) else {
            throw refuse("cpu", 0, "mp_state", "\(vcpu.mpState.mp_state) is not an x86 MP state")
        }
    }

    /// PIC master, PIC slave, IOAPIC, in that order.
    static func check(chips: [kvm_irqchip]) throws(MachineError) {
        for (index, chip) in chips.enumerated() where chip.chip_id != UInt32(index) {
            throw refuse("kvm-irqchip", UInt32(index), "chip_id", "\(chip.chip_id), expected \(index)")
        }
        let ioapic = chips[Int(VirtualMachine.IrqChipID.ioapic.rawValue)].chip.ioapic
        guard ioapic.base_address == ioapicBase else {
            throw refuse("kvm-irqchip", 2, "base_address", "0x\(String(ioapic.base_address, radix: 16)), expected 0x\(String(ioapicBase, radix: 16))")
        }
    }

    static func check(pit: kvm_pit_state2) throws(MachineError) {
        let channels = withUnsafeBytes(of: pit.channels) { Array($0.bindMemory(to: kvm_pit_channel_state.self)) }
        for (index, channel) in channels.enumerated() {
            let field = "channels[\(index)]"
            guard channel.count <= 0x10000 else { throw refuse("kvm-pit", 0, "\(field).count", "\(channel.count) is above 65536") }
            // 0xff: never programmed (KVM's kvm_pit_reset).
            guard channel.mode <= 5 || channel.mode == 0xff else { throw refuse("kvm-pit", 0, "\(field).mode", "\(channel.mode) is not an 8254 mode") }
            guard channel.rw_mode <= 3, channel.read_state <= 4, channel.write_state <= 4 else {
                throw refuse("kvm-pit", 0, "\(field).rw_mode", "access state \(channel.rw_mode)/\(channel.read_state)/\(channel.write_state) out of range")
            }
            guard channel.bcd <= 1, channel.gate <= 1 else { throw refuse("kvm-pit", 0, "\(field).bcd", "bcd \(channel.bcd), gate \(channel.gate): flags are 0 or 1") }
        }
    }
}
