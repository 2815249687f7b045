/// virtio-blk's own state: its config space as the driver saw it, and (version 2) the requests an
/// error stopped, kept for the VM's resume (QEMU migrates its s->rq; the destination re-submits
/// them when it runs). Requests in flight are not recorded: the device must be drained first (its
/// `save` refuses otherwise), so every other request the guest made is complete in RAM and on disk.
public struct VirtioBlkState: Sendable, Equatable {
    public static let sectionName = "virtio-blk"
    public static let version: UInt32 = 2

    public var capacitySectors: UInt64
    public var deviceFeatures: UInt64
    public var serial: String
    public var failedRequests: [VirtioBlkFailedRequestState]

    public init(capacitySectors: UInt64, deviceFeatures: UInt64, serial: String, failedRequests: [VirtioBlkFailedRequestState] = []) {
        self.capacitySectors = capacitySectors
        self.deviceFeatures = deviceFeatures
        self.serial = serial
        self.failedRequests = failedRequests
    }
}
