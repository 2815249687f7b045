/// What query-migrate reports about RAM and time (QEMU's MigrationStats and MigrationInfo),
/// kept by the sender thread and published to the loop.
public struct MigrationStats: Sendable {
    public var transferred: UInt64 = 0
    public var remaining: UInt64 = 0
    public var total: UInt64 = 0
    /// Zero pages sent as markers.
    public var duplicate: UInt64 = 0
    /// Pages sent with data.
    public var normal: UInt64 = 0
    public var dirtySyncCount: UInt64 = 0
    /// Measured transfer rate, Mbit/s (QEMU's mbps).
    public var mbps: Double = 0
    public var dirtyPagesRate: UInt64 = 0
    public var pagesPerSecond: UInt64 = 0
    /// Bytes sent while the VM ran, and while it was stopped.
    public var precopyBytes: UInt64 = 0
    public var downtimeBytes: UInt64 = 0
    /// Milliseconds.
    public var setupTime: Int64 = 0
    public var expectedDowntime: Int64 = 0
    public var downtime: Int64 = 0
    public var totalTime: Int64 = 0

    public var normalBytes: UInt64 { normal * UInt64(MigrationStream.pageSize) }
}
