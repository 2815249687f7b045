import KVM

/// The vCPU thread's answer to a `VcpuRequest` (Firecracker's VcpuResponse).
enum VcpuResponse: Sendable {
    case saved(VcpuState)
    case restored
    case failed(KvmError)
    /// The vCPU was not parked (the VM runs): state is only taken or put while it is stopped.
    case notParked
}
