/// A split virtqueue's device-side indices (QEMU's VirtQueue last_avail_idx, used_idx,
/// signalled_used): the rings themselves live in guest RAM and travel with it.
public struct VirtqueueState: Sendable, Equatable {
    public static let sectionName = "virtqueue"
    public static let version: UInt32 = 1

    public var lastAvailIndex: UInt16
    public var usedIndex: UInt16
    /// used_idx when the device last decided whether to interrupt (EVENT_IDX).
    public var signalledUsedIndex: UInt16
    public var eventIndexEnabled: Bool

    public init(lastAvailIndex: UInt16, usedIndex: UInt16, signalledUsedIndex: UInt16, eventIndexEnabled: Bool) {
        self.lastAvailIndex = lastAvailIndex
        self.usedIndex = usedIndex
        self.signalledUsedIndex = signalledUsedIndex
        self.eventIndexEnabled = eventIndexEnabled
    }
}
