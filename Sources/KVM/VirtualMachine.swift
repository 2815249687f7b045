import CKVM
import Glibc

/// One KVM virtual machine (`KVM_CREATE_VM`): memory slots, the in-kernel irqchip and PIT,
/// ioeventfds and irqfds, and its vCPUs.
public final class VirtualMachine: Sendable {
    let fd: Int32
    public let kvm: Kvm

    init(fd: Int32, kvm: Kvm) {
        self.fd = fd
        self.kvm = kvm
    }

    deinit { close(fd) }

    private var ioctl: Ioctl { Ioctl(fd: fd) }

    /// Intel VMX needs three pages for the real-mode TSS below 4 GiB, out of the guest's way.
    public func setTSSAddress(_ address: UInt64) throws(KvmError) {
        try ioctl.call("KVM_SET_TSS_ADDR", CKVM_SET_TSS_ADDR, value: UInt(address))
    }

    public func setIdentityMapAddress(_ address: UInt64) throws(KvmError) {
        var value = address
        try ioctl.call("KVM_SET_IDENTITY_MAP_ADDR", CKVM_SET_IDENTITY_MAP_ADDR, &value)
    }

    public func createIRQChip() throws(KvmError) {
        try ioctl.call("KVM_CREATE_IRQCHIP", CKVM_CREATE_IRQCHIP)
    }

    public func createPIT2() throws(KvmError) {
        var config = kvm_pit_config()
        config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        try ioctl.call("KVM_CREATE_PIT2", CKVM_CREATE_PIT2, &config)
    }

    public func mapMemory(_ memory: GuestMemory, slot: UInt32, logDirtyPages: Bool = false) throws(KvmError) {
        var region = kvm_userspace_memory_region()
        region.slot = slot
        region.flags = logDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0
        region.guest_phys_addr = memory.guestBase
        region.memory_size = UInt64(memory.size)
        region.userspace_addr = UInt64(UInt(bitPattern: memory.hostBase))
        try ioctl.call("KVM_SET_USER_MEMORY_REGION", CKVM_SET_USER_MEMORY_REGION, &region)
    }

    /// Lets a guest MMIO write of `length` bytes at `address` signal `eventFd` in the kernel,
    /// without an exit to user space.
    public func registerIoEventFd(_ eventFd: EventFd, mmioAddress address: UInt64, length: UInt32) throws(KvmError) {
        var request = kvm_ioeventfd()
        request.addr = address
        request.len = length
        request.fd = eventFd.fd
        try ioctl.call("KVM_IOEVENTFD", CKVM_IOEVENTFD, &request)
    }

    /// Signalling `eventFd` raises interrupt line `gsi` in the in-kernel irqchip.
    public func registerIrqFd(_ eventFd: EventFd, gsi: UInt32) throws(KvmError) {
        var request = kvm_irqfd()
        request.fd = UInt32(eventFd.fd)
        request.gsi = gsi
        try ioctl.call("KVM_IRQFD", CKVM_IRQFD, &request)
    }

    public func createVcpu(id: Int) throws(KvmError) -> Vcpu {
        let vcpuFd = try ioctl.call("KVM_CREATE_VCPU", CKVM_CREATE_VCPU, value: UInt(id))
        return try Vcpu(fd: vcpuFd, id: id, mmapSize: try kvm.vcpuMmapSize())
    }
}
