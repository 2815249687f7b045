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

    /// KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a vCPU (the first call learns
    /// the count, the second fills the list).
    public func msrIndexList() throws(KvmError) -> [UInt32] {
        var header: [UInt32] = [0]
        let probe = header.withUnsafeMutableBytes { ckvm_ioctl(fd, CKVM_GET_MSR_INDEX_LIST, $0.baseAddress) }
        if probe < 0 && errno != E2BIG { throw KvmError("ioctl KVM_GET_MSR_INDEX_LIST") }
        let count = Int(header[0])
        guard count > 0 else { return [] }
        var list = [UInt32](repeating: 0, count: 1 + count)
        list[0] = UInt32(count)
        let result = list.withUnsafeMutableBytes { ckvm_ioctl(fd, CKVM_GET_MSR_INDEX_LIST, $0.baseAddress) }
        if result < 0 { throw KvmError("ioctl KVM_GET_MSR_INDEX_LIST") }
        return Array(list[1...min(count, Int(list[0]))])
    }

    public func createVirtualMachine() throws(KvmError) -> VirtualMachine {
        let vmfd = try Ioctl(fd: fd).call("KVM_CREATE_VM", CKVM_CREATE_VM)
        return VirtualMachine(fd: vmfd, kvm: self)
    }
}
