/// One named, versioned piece of a machine's state (QEMU's VMStateDescription instance,
/// Firecracker's Persist output): what `Machine.saveState` returns and `loadState` takes. The
/// payload is the owner's own little-endian encoding (see `StatePayloadCodec`); the migration
/// stream carries it as opaque bytes with the name, instance and version beside it.
public struct StateSection: Sendable, Equatable {
    /// "cpu", "kvm-irqchip", "kvm-pit", "kvm-clock", "serial", "debug-exit", "virtio-mmio",
    /// "virtqueue", "virtio-blk".
    public let name: String
    /// Which device, vCPU, irqchip or queue: the vCPU id, the virtio-mmio slot, slot << 16 | queue.
    public let instanceId: UInt32
    public let version: UInt32
    public let payload: [UInt8]

    public init(name: String, instanceId: UInt32, version: UInt32, payload: [UInt8]) {
        self.name = name
        self.instanceId = instanceId
        self.version = version
        self.payload = payload
    }

    /// "virtio-mmio 2": how error messages name the section.
    public var label: String { "\(name) \(instanceId)" }
}
