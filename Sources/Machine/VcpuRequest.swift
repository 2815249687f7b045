import KVM

/// What the loop asks of a parked vCPU thread beside pause and resume (Firecracker's VcpuEvent):
/// done on the vCPU's own thread, since a vCPU's ioctls belong to the thread that runs it.
enum VcpuRequest: Sendable {
    /// Capture the vCPU's state with those of these MSRs (KVM_GET_MSR_INDEX_LIST) it reads back,
    /// XSAVE or the FPU, and XCRs if KVM has them.
    case saveState(msrCandidates: [UInt32], hasXsave: Bool, hasXcrs: Bool)
    case restoreState(VcpuState)
}
