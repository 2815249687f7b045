import CKVM
import Glibc

/// Get/set of every piece of vCPU state QEMU's kvm_arch_get/put_registers moves (besides
/// `getRegisters`/`getSpecialRegisters` in Vcpu.swift). Call only while the vCPU is not in KVM_RUN.
extension Vcpu {
    public func getFPU() throws(KvmError) -> kvm_fpu {
        var fpu = kvm_fpu()
        try Ioctl(fd: fd).call("KVM_GET_FPU", CKVM_GET_FPU, &fpu)
        return fpu
    }

    public func setFPU(_ fpu: kvm_fpu) throws(KvmError) {
        var copy = fpu
        try Ioctl(fd: fd).call("KVM_SET_FPU", CKVM_SET_FPU, &copy)
    }

    /// The legacy 4 KiB XSAVE area (KVM_CAP_XSAVE); covers x87, SSE, AVX and the header.
    public func getXSAVE() throws(KvmError) -> kvm_xsave {
        var xsave = kvm_xsave()
        try Ioctl(fd: fd).call("KVM_GET_XSAVE", CKVM_GET_XSAVE, &xsave)
        return xsave
    }

    public func setXSAVE(_ xsave: kvm_xsave) throws(KvmError) {
        var copy = xsave
        try Ioctl(fd: fd).call("KVM_SET_XSAVE", CKVM_SET_XSAVE, &copy)
    }

    public func getXCRs() throws(KvmError) -> kvm_xcrs {
        var xcrs = kvm_xcrs()
        try Ioctl(fd: fd).call("KVM_GET_XCRS", CKVM_GET_XCRS, &xcrs)
        return xcrs
    }

    public func setXCRs(_ xcrs: kvm_xcrs) throws(KvmError) {
        var copy = xcrs
        try Ioctl(fd: fd).call("KVM_SET_XCRS", CKVM_SET_XCRS, &copy)
    }

    public func getDebugRegisters() throws(KvmError) -> kvm_debugregs {
        var regs = kvm_debugregs()
        try Ioctl(fd: fd).call("KVM_GET_DEBUGREGS", CKVM_GET_DEBUGREGS, &regs)
        return regs
    }

    public func setDebugRegisters(_ regs: kvm_debugregs) throws(KvmError) {
        var copy = regs
        try Ioctl(fd: fd).call("KVM_SET_DEBUGREGS", CKVM_SET_DEBUGREGS, &copy)
    }

    public func getLAPIC() throws(KvmError) -> kvm_lapic_state {
        var lapic = kvm_lapic_state()
        try Ioctl(fd: fd).call("KVM_GET_LAPIC", CKVM_GET_LAPIC, &lapic)
        return lapic
    }

    public func setLAPIC(_ lapic: kvm_lapic_state) throws(KvmError) {
        var copy = lapic
        try Ioctl(fd: fd).call("KVM_SET_LAPIC", CKVM_SET_LAPIC, &copy)
    }

    public func getVcpuEvents() throws(KvmError) -> kvm_vcpu_events {
        var events = kvm_vcpu_events()
        try Ioctl(fd: fd).call("KVM_GET_VCPU_EVENTS", CKVM_GET_VCPU_EVENTS, &events)
        return events
    }

    public func setVcpuEvents(_ events: kvm_vcpu_events) throws(KvmError) {
        var copy = events
        try Ioctl(fd: fd).call("KVM_SET_VCPU_EVENTS", CKVM_SET_VCPU_EVENTS, &copy)
    }

    public func getMPState() throws(KvmError) -> kvm_mp_state {
        var state = kvm_mp_state()
        try Ioctl(fd: fd).call("KVM_GET_MP_STATE", CKVM_GET_MP_STATE, &state)
        return state
    }

    public func setMPState(_ state: kvm_mp_state) throws(KvmError) {
        var copy = state
        try Ioctl(fd: fd).call("KVM_SET_MP_STATE", CKVM_SET_MP_STATE, &copy)
    }

    // MARK: MSRs (struct kvm_msrs: u32 nmsrs, u32 pad, then 16-byte kvm_msr_entry each)

    private static let msrsHeaderSize = 8
    private static let msrEntrySize = MemoryLayout<kvm_msr_entry>.size

    /// KVM_GET_MSRS: the values of `indices`, in order. KVM stops at the first MSR it cannot
    /// read, so the answer may be a prefix of the request.
    public func getMSRs(_ indices: [UInt32]) throws(KvmError) -> [MsrEntry] {
        var buffer = Self.msrBuffer(indices.map { MsrEntry(index: $0, value: 0) })
        let count = buffer.withUnsafeMutableBytes { ckvm_ioctl(fd, CKVM_GET_MSRS, $0.baseAddress) }
        if count < 0 { throw KvmError("ioctl KVM_GET_MSRS") }
        return Self.entries(in: buffer, count: min(Int(count), indices.count))
    }

    /// KVM_SET_MSRS: all of `entries`, or an error naming the first MSR KVM refused.
    public func setMSRs(_ entries: [MsrEntry]) throws(KvmError) {
        guard !entries.isEmpty else { return }
        var buffer = Self.msrBuffer(entries)
        let count = buffer.withUnsafeMutableBytes { ckvm_ioctl(fd, CKVM_SET_MSRS, $0.baseAddress) }
        if count < 0 { throw KvmError("ioctl KVM_SET_MSRS") }
        if Int(count) < entries.count {
            let refused = entries[Int(count)].index
            throw KvmError("ioctl KVM_SET_MSRS: MSR 0x\(String(refused, radix: 16)) refused", errno: EINVAL)
        }
    }

    /// The MSRs of `candidates` (KVM_GET_MSR_INDEX_LIST) this vCPU really reads back. One
    /// KVM_GET_MSRS asks for all that are left: KVM answers a prefix and stops at the first MSR it
    /// cannot read, which is skipped; so it takes one ioctl per unreadable MSR plus one, where
    /// trying each on its own took one per candidate (the larger part of a migration's
    /// switch-over on the idle guest).
    public func readableMSRs(of candidates: [UInt32]) -> [UInt32] {
        var readable: [UInt32] = []
        var rest = candidates[...]
        while !rest.isEmpty {
            guard let answered = try? getMSRs(Array(rest)).count else { break }
            readable += rest.prefix(answered)
            rest = rest.dropFirst(answered + 1)  // the one KVM stopped at cannot be read
        }
        return readable
    }

    private static func msrBuffer(_ entries: [MsrEntry]) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: msrsHeaderSize + msrEntrySize * entries.count)
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(entries.count), toByteOffset: 0, as: UInt32.self)
            for (slot, entry) in entries.enumerated() {
                let offset = msrsHeaderSize + slot * msrEntrySize
                raw.storeBytes(of: entry.index, toByteOffset: offset, as: UInt32.self)
                raw.storeBytes(of: entry.value, toByteOffset: offset + 8, as: UInt64.self)
            }
        }
        return buffer
    }

    private static func entries(in buffer: [UInt8], count: Int) -> [MsrEntry] {
        buffer.withUnsafeBytes { raw in
            (0..<count).map { slot in
                let offset = msrsHeaderSize + slot * msrEntrySize
                return MsrEntry(index: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self),
                                value: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            }
        }
    }
}
