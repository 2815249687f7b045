/// A virtio-mmio transport's registers (QEMU's virtio_mmio vmstate plus the virtio core's
/// status/features/queue layout): what a driver negotiated and where its rings are.
public struct VirtioMmioTransportState: Sendable, Equatable {
    public static let sectionName = "virtio-mmio"
    public static let version: UInt32 = 1

    /// One queue's layout as the driver configured it.
    public struct QueueLayout: Sendable, Equatable {
        public var size: UInt16
        public var ready: Bool
        public var descriptorTable: UInt64
        public var availRing: UInt64
        public var usedRing: UInt64

        public init(size: UInt16, ready: Bool, descriptorTable: UInt64, availRing: UInt64, usedRing: UInt64) {
            self.size = size
            self.ready = ready
            self.descriptorTable = descriptorTable
            self.availRing = availRing
            self.usedRing = usedRing
        }
    }

    public var status: UInt32
    public var deviceFeaturesSelect: UInt32
    public var driverFeaturesSelect: UInt32
    public var driverFeatures: UInt64
    public var queueSelect: UInt32
    public var interruptStatus: UInt32
    public var configGeneration: UInt32
    /// Why the device asked for a reset (DEVICE_NEEDS_RESET), if it did.
    public var brokenReason: String?
    public var queues: [QueueLayout]

    public static let maxBrokenReasonBytes = 1024

    public init(status: UInt32, deviceFeaturesSelect: UInt32, driverFeaturesSelect: UInt32, driverFeatures: UInt64,
                queueSelect: UInt32, interruptStatus: UInt32, configGeneration: UInt32, brokenReason: String?,
                queues: [QueueLayout]) {
        self.status = status
        self.deviceFeaturesSelect = deviceFeaturesSelect
        self.driverFeaturesSelect = driverFeaturesSelect
        self.driverFeatures = driverFeatures
        self.queueSelect = queueSelect
        self.interruptStatus = interruptStatus
        self.configGeneration = configGeneration
        self.brokenReason = brokenReason
        self.queues = queues
    }
}
