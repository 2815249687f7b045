import Devices

/// The sections a machine's state consists of, with the version this svmm writes and loads.
/// The order is the `state` fuzz target's selector byte (Tests/fuzz-corpus/state): append only.
enum StateSectionKind: String, CaseIterable {
    case cpu = "cpu"
    case kvmClock = "kvm-clock"
    case kvmIrqchip = "kvm-irqchip"
    case kvmPit = "kvm-pit"
    case serial = "serial"
    case debugExit = "debug-exit"
    case virtioMmio = "virtio-mmio"
    case virtqueue = "virtqueue"
    case virtioBlk = "virtio-blk"

    var version: UInt32 {
        switch self {
        case .cpu, .kvmClock, .kvmIrqchip, .kvmPit: 1
        case .serial: SerialState.version
        case .debugExit: DebugExitState.version
        case .virtioMmio: VirtioMmioTransportState.version
        case .virtqueue: VirtqueueState.version
        case .virtioBlk: VirtioBlkState.version
        }
    }
}
