import Devices
import KVM

/// The vCPU thread's answer to a `VcpuRequest` (Firecracker's VcpuResponse).
enum VcpuResponse: Sendable {
    case saved(VcpuState, serial: SerialState, debugExit: DebugExitState?)
    case restored
    case failed(KvmError)
    /// A port device refused its state (nothing of the vCPU was changed).
    case refused(StateSectionKind, DeviceStateError)
    /// The vCPU was not parked (the VM runs): state is only taken or put while it is stopped.
    case notParked
}
