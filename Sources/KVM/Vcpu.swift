import CKVM
import Glibc

/// One virtual CPU (`KVM_CREATE_VCPU`) and its shared `kvm_run` page. Not Sendable: created on
/// any thread, then moved to the single thread that runs it; other threads hold its `runPage`.
public final class Vcpu {
    public let id: Int
    let fd: Int32
    /// Shared with another thread only for `immediate_exit`.
    public let runPage: VcpuRunPage
    private var run: UnsafeMutablePointer<kvm_run> { runPage.run }

    init(fd: Int32, id: Int, mmapSize: Int) throws(KvmError) {
        do { runPage = try VcpuRunPage(fd: fd, size: mmapSize) } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.id = id
    }

    deinit { close(fd) }

    private var ioctl: Ioctl { Ioctl(fd: fd) }

    public func setCPUID(_ table: CpuidTable) throws(KvmError) {
        try ioctl.call("KVM_SET_CPUID2", CKVM_SET_CPUID2, table.raw)
    }

    public func getRegisters() throws(KvmError) -> kvm_regs {
        var regs = kvm_regs()
        try ioctl.call("KVM_GET_REGS", CKVM_GET_REGS, &regs)
        return regs
    }

    public func setRegisters(_ regs: kvm_regs) throws(KvmError) {
        var copy = regs
        try ioctl.call("KVM_SET_REGS", CKVM_SET_REGS, &copy)
    }

    public func getSpecialRegisters() throws(KvmError) -> kvm_sregs {
        var sregs = kvm_sregs()
        try ioctl.call("KVM_GET_SREGS", CKVM_GET_SREGS, &sregs)
        return sregs
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KvmError) {
        var copy = sregs
        try ioctl.call("KVM_SET_SREGS", CKVM_SET_SREGS, &copy)
    }

    /// See VcpuRunPage.requestImmediateExit.
    public func requestImmediateExit(_ on: Bool) { runPage.requestImmediateExit(on) }

    /// Enters the guest until the next exit to user space.
    public func runOnce() throws(KvmError) -> VcpuExit {
        if ckvm_ioctl_value(fd, CKVM_RUN, 0) < 0 {
            if errno == EINTR || errno == EAGAIN { return .interrupted }
            throw KvmError("ioctl KVM_RUN")
        }
        return decodeExit()
    }

    private func decodeExit() -> VcpuExit {
        let state = run.pointee
        switch Int32(state.exit_reason) {
        case KVM_EXIT_IO:
            let io = state.io
            let size = Int(io.size)
            let count = Int(io.count)
            if io.direction == UInt8(KVM_EXIT_IO_OUT) {
                let data = UnsafeRawPointer(run) + Int(io.data_offset)
                return .ioOut(port: io.port, size: size, bytes: Array(UnsafeRawBufferPointer(start: data, count: size * count)))
            }
            return .ioIn(port: io.port, size: size, count: count)
        case KVM_EXIT_MMIO:
            let mmio = state.mmio
            let length = min(Int(mmio.len), 8)
            if mmio.is_write != 0 {
                let bytes = withUnsafeBytes(of: mmio.data) { Array($0.prefix(length)) }
                return .mmioWrite(address: mmio.phys_addr, bytes: bytes)
            }
            return .mmioRead(address: mmio.phys_addr, size: length)
        case KVM_EXIT_HLT: return .halt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_INTR: return .interrupted
        case KVM_EXIT_SYSTEM_EVENT: return .systemEvent(type: state.system_event.type)
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: state.internal.suberror)
        case KVM_EXIT_FAIL_ENTRY: return .failEntry(reason: state.fail_entry.hardware_entry_failure_reason)
        default: return .other(reason: state.exit_reason)
        }
    }

    /// Supplies the bytes an `in`/`ins` exit reads (count × size bytes; extra or missing bytes are cut or zero).
    public func completeIoIn(_ bytes: [UInt8]) {
        let io = run.pointee.io
        let total = Int(io.size) * Int(io.count)
        let destination = UnsafeMutableRawPointer(run) + Int(io.data_offset)
        for index in 0..<total {
            destination.storeBytes(of: index < bytes.count ? bytes[index] : 0, toByteOffset: index, as: UInt8.self)
        }
    }

    /// Supplies the value an MMIO read returns.
    public func completeMmioRead(_ bytes: [UInt8]) {
        withUnsafeMutableBytes(of: &run.pointee.mmio.data) { data in
            for index in 0..<data.count { data[index] = index < bytes.count ? bytes[index] : 0 }
        }
    }
}
