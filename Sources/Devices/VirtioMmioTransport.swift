import KVM
import Logging

/// The virtio-mmio transport, version 2 (virtio 1.x, section 4.2): the register block a driver
/// uses to negotiate features, set up queues and read config space. Owned by the event-loop thread;
/// vCPU exits reach it through the loop, and queue kicks arrive on `notifyEventFd` (an ioeventfd).
public final class VirtioMmioTransport: VirtioTransportLink {
    public static let windowSize: UInt64 = 0x200
    static let magic: UInt32 = 0x7472_6976
    static let vendorID: UInt32 = 0x554d_4551  // "QEMU", as QEMU's transport reports

    enum Register: Int {
        case magic = 0x000, version = 0x004, deviceID = 0x008, vendorID = 0x00c
        case deviceFeatures = 0x010, deviceFeaturesSelect = 0x014
        case driverFeatures = 0x020, driverFeaturesSelect = 0x024
        case queueSelect = 0x030, queueSizeMax = 0x034, queueSize = 0x038, queueReady = 0x044
        case queueNotify = 0x050, interruptStatus = 0x060, interruptAck = 0x064, status = 0x070
        case queueDescLow = 0x080, queueDescHigh = 0x084, queueDriverLow = 0x090, queueDriverHigh = 0x094
        case queueDeviceLow = 0x0a0, queueDeviceHigh = 0x0a4, configGeneration = 0x0fc
    }

    enum Status {
        static let acknowledge: UInt32 = 1, driver: UInt32 = 2, driverOK: UInt32 = 4
        static let featuresOK: UInt32 = 8, needsReset: UInt32 = 0x40, failed: UInt32 = 0x80
    }

    public let device: VirtioDevice
    public let queues: [Virtqueue]
    public let notifyEventFd: EventFd
    public let interruptEventFd: EventFd
    private let logger = Logger(label: "svmm.virtio-mmio")
    var status: UInt32 = 0
    var deviceFeaturesSelect: UInt32 = 0
    var driverFeaturesSelect: UInt32 = 0
    var driverFeatures: UInt64 = 0
    var queueSelect: UInt32 = 0
    var interruptStatus: UInt32 = 0
    var configGeneration: UInt32 = 0
    public internal(set) var brokenReason: String?

    public init(device: VirtioDevice, memory: GuestMemory) throws(KvmError) {
        self.device = device
        queues = device.queueMaxSizes.map { Virtqueue(memory: memory, maxSize: $0) }
        notifyEventFd = try EventFd()
        interruptEventFd = try EventFd()
    }

    public var offeredFeatures: UInt64 { device.deviceFeatures | VirtioFeature.version1 }
    public var isActive: Bool { status & Status.driverOK != 0 && brokenReason == nil }

    // MARK: register access (from a vCPU exit, on the loop thread)

    public func read(offset: Int, size: Int) -> UInt64 {
        if offset >= 0x100 { return device.readConfig(offset: offset - 0x100, size: size) }
        guard size == 4, let register = Register(rawValue: offset) else { return 0 }
        return UInt64(readRegister(register))
    }

    public func write(offset: Int, size: Int, value: UInt64) {
        if offset >= 0x100 { return device.writeConfig(offset: offset - 0x100, size: size, value: value) }
        guard size == 4, let register = Register(rawValue: offset) else { return }
        writeRegister(register, UInt32(truncatingIfNeeded: value))
    }

    private var selectedQueue: Virtqueue? {
        Int(queueSelect) < queues.count ? queues[Int(queueSelect)] : nil
    }

    private func readRegister(_ register: Register) -> UInt32 {
        switch register {
        case .magic: Self.magic
        case .version: 2
        case .deviceID: device.deviceID
        case .vendorID: Self.vendorID
        case .deviceFeatures: deviceFeaturesSelect < 2 ? UInt32(truncatingIfNeeded: offeredFeatures >> (32 * UInt64(deviceFeaturesSelect))) : 0
        case .queueSizeMax: UInt32(selectedQueue?.maxSize ?? 0)
        case .queueReady: selectedQueue?.isReady == true ? 1 : 0
        case .interruptStatus: interruptStatus
        case .status: status
        case .configGeneration: configGeneration
        default: 0
        }
    }

    private func writeRegister(_ register: Register, _ value: UInt32) {
        switch register {
        case .deviceFeaturesSelect: deviceFeaturesSelect = value
        case .driverFeaturesSelect: driverFeaturesSelect = value
        case .driverFeatures: setDriverFeatures(value)
        case .queueSelect: queueSelect = value
        case .queueSize: configureQueue { $0.size = UInt16(truncatingIfNeeded: value) }
        case .queueDescLow: configureQueue { $0.descriptorTable = low($0.descriptorTable, value) }
        case .queueDescHigh: configureQueue { $0.descriptorTable = high($0.descriptorTable, value) }
        case .queueDriverLow: configureQueue { $0.availRing = low($0.availRing, value) }
        case .queueDriverHigh: configureQueue { $0.availRing = high($0.availRing, value) }
        case .queueDeviceLow: configureQueue { $0.usedRing = low($0.usedRing, value) }
        case .queueDeviceHigh: configureQueue { $0.usedRing = high($0.usedRing, value) }
        case .queueReady: setQueueReady(value == 1)
        case .queueNotify: notify(queue: Int(value))
        case .interruptAck: interruptStatus &= ~value
        case .status: setStatus(value)
        default: break
        }
    }

    private func low(_ address: UInt64, _ value: UInt32) -> UInt64 { (address & ~0xffff_ffff) | UInt64(value) }
    private func high(_ address: UInt64, _ value: UInt32) -> UInt64 { (address & 0xffff_ffff) | UInt64(value) << 32 }

    private func setDriverFeatures(_ value: UInt32) {
        guard status & Status.featuresOK == 0, driverFeaturesSelect < 2 else { return }
        let shift = 32 * UInt64(driverFeaturesSelect)
        driverFeatures = (driverFeatures & ~(0xffff_ffff << shift)) | UInt64(value) << shift
    }

    /// Queue layout can only change while the queue is not live.
    private func configureQueue(_ change: (Virtqueue) -> Void) {
        guard let queue = selectedQueue, !queue.isReady else { return }
        change(queue)
    }

    private func setQueueReady(_ ready: Bool) {
        guard let queue = selectedQueue else { return }
        if !ready { return queue.reset() }
        guard queue.size > 0, queue.size <= queue.maxSize, queue.size & (queue.size - 1) == 0 else {
            return deviceError("queue \(queueSelect) size \(queue.size) is not a power of 2 up to \(queue.maxSize)")
        }
        do {
            try queue.validate()
            queue.isReady = true
        } catch {
            deviceError(error.description)
        }
    }

    private func setStatus(_ value: UInt32) {
        if value == 0 { return reset() }
        var newStatus = value
        if value & Status.featuresOK != 0 && status & Status.featuresOK == 0 && !featuresAcceptable() {
            newStatus &= ~Status.featuresOK
        }
        let becameLive = newStatus & Status.driverOK != 0 && status & Status.driverOK == 0
        status = newStatus | (status & Status.needsReset)
        if becameLive { activate() }
    }

    /// The driver may only take what we offer, and must speak virtio 1.
    private func featuresAcceptable() -> Bool {
        driverFeatures & ~offeredFeatures == 0 && driverFeatures & VirtioFeature.version1 != 0
    }

    func activate() {
        guard status & Status.featuresOK != 0 else { return deviceError("DRIVER_OK set before FEATURES_OK") }
        let eventIndex = driverFeatures & VirtioFeature.ringEventIndex != 0
        for queue in queues { queue.eventIndexEnabled = eventIndex }
        device.activate(features: driverFeatures, queues: queues, transport: self)
    }

    private func reset() {
        device.reset()
        for queue in queues { queue.reset() }
        status = 0
        driverFeatures = 0
        deviceFeaturesSelect = 0
        driverFeaturesSelect = 0
        queueSelect = 0
        interruptStatus = 0
        brokenReason = nil
    }

    // MARK: queue kicks and interrupts

    /// A kick of `queue`, from the ioeventfd (or a trapped QueueNotify write).
    public func notify(queue index: Int) {
        guard isActive, index >= 0, index < queues.count, queues[index].isReady else { return }
        device.processQueue(index)
    }

    /// A busy-poll step for queue `index` (QEMU's virtio_queue_host_notifier_aio_poll): processes
    /// it as a kick would if the driver published something; false if there was nothing.
    public func pollQueue(_ index: Int, hasWork: () -> Bool) -> Bool {
        guard isActive, index >= 0, index < queues.count, queues[index].isReady, hasWork() else { return false }
        device.processQueue(index)
        return true
    }

    public func signalUsedBuffers() {
        interruptStatus |= 1
        interruptEventFd.signal()
    }

    public func deviceError(_ reason: String) {
        guard brokenReason == nil else { return }
        brokenReason = reason
        logger.error("virtio-blk: \(reason)")
        status |= Status.needsReset
        configGeneration &+= 1
        interruptStatus |= 2
        if status & Status.driverOK != 0 { interruptEventFd.signal() }
    }
}
