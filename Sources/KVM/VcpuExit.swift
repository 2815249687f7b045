/// Why `KVM_RUN` returned to user space, decoded from `struct kvm_run`.
public enum VcpuExit: Equatable, Sendable {
    /// `out`/`outs`: `bytes` holds `count` values of `size` bytes each.
    case ioOut(port: UInt16, size: Int, bytes: [UInt8])
    /// `in`/`ins`: answer with `Vcpu.completeIoIn` before the next run.
    case ioIn(port: UInt16, size: Int, count: Int)
    case mmioWrite(address: UInt64, bytes: [UInt8])
    /// Answer with `Vcpu.completeMmioRead` before the next run.
    case mmioRead(address: UInt64, size: Int)
    case halt
    case shutdown
    /// A signal interrupted `KVM_RUN` (or `immediate_exit` was set).
    case interrupted
    case systemEvent(type: UInt32)
    case internalError(suberror: UInt32)
    case failEntry(reason: UInt64)
    case other(reason: UInt32)
}
