/// QAPI's MigrationStatus, with QEMU's names.
public enum MigrationStatus: String, Sendable {
    case none, setup, cancelling, cancelled, active, completed, failed, device
    case preSwitchover = "pre-switchover"
    case postcopyActive = "postcopy-active"

    /// A migration in one of these states is "in progress" (QEMU's migration_is_running).
    public var isRunning: Bool {
        switch self {
        case .setup, .active, .preSwitchover, .device, .cancelling, .postcopyActive: true
        case .none, .cancelled, .completed, .failed: false
        }
    }
}
