import Testing
@testable import KVM

/// These need /dev/kvm: they fail (never skip) when it is missing.
@Suite struct KvmDeviceTests {
    @Test func createsAVirtualMachineWithIrqchipAndMemory() throws {
        let kvm = try Kvm()
        let vm = try kvm.createVirtualMachine()
        try vm.createIRQChip()
        let memory = try GuestMemory(size: 1 << 20)
        try vm.mapMemory(memory, slot: 0)
        let vcpu = try vm.createVcpu(id: 0)
        try vcpu.setCPUID(try kvm.supportedCPUID())
        #expect(try vcpu.getRegisters().rflags & 0x2 != 0)
    }

    @Test func errorsNameTheIoctlAndErrno() throws {
        let vm = try Kvm().createVirtualMachine()
        let memory = try GuestMemory(guestBase: 0x123, size: 4096)  // unaligned guest address
        #expect {
            try vm.mapMemory(memory, slot: 0)
        } throws: { error in
            (error as? KvmError)?.description == "ioctl KVM_SET_USER_MEMORY_REGION: EINVAL"
        }
    }
}
