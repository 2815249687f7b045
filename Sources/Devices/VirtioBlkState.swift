/// virtio-blk's own state: its config space as the driver saw it. Requests in flight are not
/// recorded: the device must be drained first (its `save` refuses otherwise), so every request
/// the guest made is complete in RAM and on disk.
public struct VirtioBlkState: Sendable, Equatable {
    public static let sectionName = "virtio-blk"
    public static let version: UInt32 = 1

    public var capacitySectors: UInt64
    public var deviceFeatures: UInt64
    public var serial: String

    public init(capacitySectors: UInt64, deviceFeatures: UInt64, serial: String) {
        self.capacitySectors = capacitySectors
        self.deviceFeatures = deviceFeatures
        self.serial = serial
    }
}
