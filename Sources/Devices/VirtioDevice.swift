/// A virtio device model behind a transport: features, config space and queue processing.
/// All calls arrive on the event-loop thread.
public protocol VirtioDevice: AnyObject {
    var deviceID: UInt32 { get }
    var deviceFeatures: UInt64 { get }
    var queueMaxSizes: [UInt16] { get }
    func readConfig(offset: Int, size: Int) -> UInt64
    func writeConfig(offset: Int, size: Int, value: UInt64)
    /// The driver set DRIVER_OK: the queues are configured and `features` negotiated.
    func activate(features: UInt64, queues: [Virtqueue], transport: VirtioTransportLink)
    /// The driver kicked queue `index`.
    func processQueue(_ index: Int)
    /// The driver reset the device: forget the queues.
    func reset()
}

/// What a device may ask of its transport.
public protocol VirtioTransportLink: AnyObject {
    /// Raise the used-buffer interrupt.
    func signalUsedBuffers()
    /// Stop the device and ask the driver for a reset (DEVICE_NEEDS_RESET), with the reason.
    func deviceError(_ reason: String)
}

public enum VirtioFeature {
    public static let version1: UInt64 = 1 << 32
    public static let ringIndirectDescriptors: UInt64 = 1 << 28
    public static let ringEventIndex: UInt64 = 1 << 29
}
