/// What the loop and the sender thread of an outgoing migration both touch (behind a Mutex).
struct OutgoingShared: Sendable {
    var cancelRequested = false
    /// migrate-continue came (pause-before-switchover).
    var continueRequested = false
    /// migrate-start-postcopy came: bitmaps go after the switch-over.
    var postcopyRequested = false
    var stats = MigrationStats()
    var maxBandwidth: UInt64
    var downtimeLimit: UInt64
    var channel: MigrationChannel?
}
