import CKVM
import Devices

/// Every section of a machine's state decoded (not yet checked or applied): what `loadState`
/// has in hand before it changes anything.
struct DecodedMachineState {
    /// One virtio-mmio slot: its transport, each of its queues, its device.
    struct VirtioSlot {
        var transport: VirtioMmioTransportState
        var queues: [VirtqueueState]
        var blk: VirtioBlkState?
    }

    var vcpu: VcpuState
    var clock: kvm_clock_data
    var chips: [kvm_irqchip]
    var pit: kvm_pit_state2
    var serial: SerialState
    var debugExit: DebugExitState?
    var virtio: [VirtioSlot]
}
