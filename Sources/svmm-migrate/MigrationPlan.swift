import QmpClient

/// Everything the flow needs to know, checked and parsed from the command line.
struct MigrationPlan: Sendable {
    var source: QmpAddress
    var destination: QmpAddress
    /// The source's root node or drive to mirror (`blockdev-mirror`'s `device`).
    var device: String
    /// The destination's disk node, exported writable over NBD and written by the mirror.
    var targetNode: String
    /// The destination's guest device (its BlockBackend name in the graph); nil: the one named
    /// backend whose root is `targetNode`.
    var guestDevice: String?
    var nbd: QmpAddress
    var exportName: String
    /// The source's NBD client node that the mirror writes.
    var nbdNodeName: String
    var jobId: String
    /// blockdev-mirror's `speed` (bytes a second, 0: unlimited).
    var mirrorSpeed: Int64
    var migrateURI: String
    /// What the destination listens on (`migrate-incoming`); usually `migrateURI`.
    var incomingURI: String
    /// How long each wait (READY, the migration, the job's end) may take, in seconds.
    var timeout: Double
    var earlyResumeCheck: Bool
    /// Leave the destination paused once the export is gone (virsh migrate --suspend).
    var suspend: Bool
}
