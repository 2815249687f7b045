import CKVM
import Glibc

/// The VM-wide state KVM keeps in the kernel: the in-kernel irqchip (two 8259 PICs and the
/// IOAPIC), the 8254 PIT and the KVM clock, as QEMU's kvm_pic/kvm_ioapic/kvm_pit/kvmclock save it.
extension VirtualMachine {
    public enum IrqChipID: UInt32, CaseIterable, Sendable {
        case picMaster = 0, picSlave = 1, ioapic = 2  // KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC
    }

    public func getIrqChip(_ id: IrqChipID) throws(KvmError) -> kvm_irqchip {
        var chip = kvm_irqchip()
        chip.chip_id = id.rawValue
        try Ioctl(fd: fd).call("KVM_GET_IRQCHIP", CKVM_GET_IRQCHIP, &chip)
        return chip
    }

    public func setIrqChip(_ chip: kvm_irqchip) throws(KvmError) {
        var copy = chip
        try Ioctl(fd: fd).call("KVM_SET_IRQCHIP", CKVM_SET_IRQCHIP, &copy)
    }

    public func getPIT2() throws(KvmError) -> kvm_pit_state2 {
        var state = kvm_pit_state2()
        try Ioctl(fd: fd).call("KVM_GET_PIT2", CKVM_GET_PIT2, &state)
        return state
    }

    public func setPIT2(_ state: kvm_pit_state2) throws(KvmError) {
        var copy = state
        try Ioctl(fd: fd).call("KVM_SET_PIT2", CKVM_SET_PIT2, &copy)
    }

    public func getClock() throws(KvmError) -> kvm_clock_data {
        var clock = kvm_clock_data()
        try Ioctl(fd: fd).call("KVM_GET_CLOCK", CKVM_GET_CLOCK, &clock)
        return clock
    }

    /// KVM_SET_CLOCK takes only `clock` (and, with KVM_CLOCK_REALTIME, `realtime`); flags KVM
    /// reported on get but does not accept on set are dropped, as QEMU's kvmclock does.
    public func setClock(_ clock: kvm_clock_data) throws(KvmError) {
        var copy = kvm_clock_data()
        copy.clock = clock.clock
        try Ioctl(fd: fd).call("KVM_SET_CLOCK", CKVM_SET_CLOCK, &copy)
    }
}
