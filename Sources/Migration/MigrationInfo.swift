import Loop

/// query-migrate's answer before it becomes JSON: which fields QEMU 7.2 fills in for the state
/// (fill_source_migration_info, fill_destination_migration_info).
public struct MigrationInfo: Sendable {
    public var status: MigrationStatus?
    /// The source's timings and RAM statistics (nil: not shown in this state).
    public var stats: MigrationStats?
    public var showsExpectedDowntime = false
    public var showsDowntime = false
    public var errorDescription: String?
    /// The destination's listening addresses while it waits (`socket-address`), as QEMU lists
    /// them: the last opened first.
    public var listeningOn: [BoundSocketAddress] = []
}
