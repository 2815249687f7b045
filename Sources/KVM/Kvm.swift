import CKVM
import Glibc

/// The `/dev/kvm` system handle.
public final class Kvm: Sendable {
    public static let devicePath = "/dev/kvm"
    let fd: Int32

    public init(path: String = Kvm.devicePath) throws(KvmError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 { throw KvmError("open \(path)") }
        self.fd = fd
        let version = try Ioctl(fd: fd).call("KVM_GET_API_VERSION", CKVM_GET_API_VERSION)
        if version != KVM_API_VERSION {
            close(fd)
            throw KvmError("KVM API version \(version), expected \(KVM_API_VERSION)", errno: EINVAL)
        }
    }

    deinit { close(fd) }

    public func checkExtension(_ capability: Int32) -> Int32 {
        max(0, ckvm_ioctl_value(fd, CKVM_CHECK_EXTENSION, UInt(capability)))
    }

    public func vcpuMmapSize() throws(KvmError) -> Int {
        Int(try Ioctl(fd: fd).call("KVM_GET_VCPU_MMAP_SIZE", CKVM_GET_VCPU_MMAP_SIZE))
    }

    /// The CPUID leaves KVM can offer a guest, to be handed to `Vcpu.setCPUID`.
    public func supportedCPUID() throws(KvmError) -> CpuidTable {
        let table = CpuidTable(capacity: 256)
        try Ioctl(fd: fd).call("KVM_GET_SUPPORTED_CPUID", CKVM_GET_SUPPORTED_CPUID, table.raw)
        return table
    }

    public func createVirtualMachine() throws(KvmError) -> VirtualMachine {
        let vmfd = try Ioctl(fd: fd).call("KVM_CREATE_VM", CKVM_CREATE_VM)
        return VirtualMachine(fd: vmfd, kvm: self)
    }
}
