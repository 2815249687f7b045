import Devices
import KVM

/// What the loop asks of a parked vCPU thread beside pause and resume (Firecracker's VcpuEvent):
/// done on the vCPU's own thread, since a vCPU's ioctls and its port devices belong to the
/// thread that runs it.
enum VcpuRequest: Sendable {
    /// Capture the vCPU's state as its `VcpuStateLayout` says, and the port devices' state.
    case saveState
    /// Put the port devices' state, then the vCPU's.
    case restoreState(VcpuState, serial: SerialState, debugExit: DebugExitState?)
}
