import Devices

/// The port devices of a vCPU thread: the bus its port exits go to, and the devices on it that
/// have state to migrate. Built on the loop, then moved to the vCPU thread with its runner.
struct VcpuPorts {
    var bus = PortBus()
    let serial: Serial16550
    let debugExit: DebugExit?
}
