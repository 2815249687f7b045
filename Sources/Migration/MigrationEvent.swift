/// What the migration reports to the monitor: QMP's MIGRATION and MIGRATION_PASS events.
public enum MigrationEvent: Sendable {
    case status(MigrationStatus)
    case pass(Int)
}
