/// The migration parameters svmm honours (QEMU's MigrationParameters, defaults as QEMU 7.2's).
public struct MigrationParameters: Sendable, Equatable {
    /// Bytes per second the precopy phase may send (QEMU's MAX_THROTTLE, 128 MiB/s).
    public var maxBandwidth: UInt64 = 128 << 20
    /// The pause at switch-over the sender aims for, in milliseconds (QEMU's default 300).
    public var downtimeLimit: UInt64 = 300

    public init() {}

    /// migrate_params_check's limits and texts (QEMU 7.2). The values come as QAPI's uint64, so
    /// `-1` is 2^64-1 here, as in QEMU: out of range for the downtime, and for the bandwidth,
    /// whose only limit is SIZE_MAX, "no limit in practice" (checked against QEMU 7.2 in the
    /// differential scenario migrate_set_parameters_ranges).
    public static let maxDowntime: UInt64 = 2000 * 1000

    public static func checkDowntime(_ value: UInt64) throws(MigrationError) -> UInt64 {
        guard value <= maxDowntime else {
            throw MigrationError("Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms")
        }
        return value
    }

    /// `max_bandwidth > SIZE_MAX` cannot happen on a 64-bit host: every uint64 is taken.
    public static func checkBandwidth(_ value: UInt64) throws(MigrationError) -> UInt64 { value }
}
