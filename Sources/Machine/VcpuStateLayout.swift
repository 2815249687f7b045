import KVM

/// What a vCPU's saved state holds on this host, asked of KVM once when the machine starts rather
/// than at each save (it was the first part of a migration's switch-over): the MSRs
/// KVM_GET_MSR_INDEX_LIST names (the vCPU thread keeps those it reads back), and whether KVM has
/// XSAVE (else the FPU is saved) and XCRs.
struct VcpuStateLayout: Sendable {
    let msrCandidates: [UInt32]
    let hasXsave: Bool
    let hasXcrs: Bool
}
