/// The migration parameters svmm honours (QEMU's MigrationParameters, defaults as QEMU 7.2's).
public struct MigrationParameters: Sendable, Equatable {
    /// Bytes per second the precopy phase may send (QEMU's MAX_THROTTLE, 128 MiB/s).
    public var maxBandwidth: UInt64 = 128 << 20
    /// The pause at switch-over the sender aims for, in milliseconds (QEMU's default 300).
    public var downtimeLimit: UInt64 = 300

    public init() {}

    /// migrate_params_check's limits and texts.
    public static let maxDowntime: UInt64 = 2000 * 1000
    public static let maxBandwidthLimit: UInt64 = UInt64(Int.max) / 1_000_000

    public static func checkDowntime(_ value: Int64) throws(MigrationError) -> UInt64 {
        guard value >= 0, UInt64(value) <= maxDowntime else {
            throw MigrationError("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms")
        }
        return UInt64(value)
    }

    public static func checkBandwidth(_ value: Int64) throws(MigrationError) -> UInt64 {
        guard value >= 0, UInt64(value) <= maxBandwidthLimit else {
            throw MigrationError("Parameter 'max_bandwidth' expects an integer in the range of 0 to \(maxBandwidthLimit) bytes/second")
        }
        return UInt64(value)
    }
}
