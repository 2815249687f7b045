/// QEMU's RunState, with QAPI's names.
public enum RunState: String, Sendable {
    case prelaunch, running, paused, inmigrate, postmigrate, shutdown, suspended, debug, watchdog, colo
    case finishMigrate = "finish-migrate"
    case internalError = "internal-error"
    case ioError = "io-error"
    case restoreVM = "restore-vm"
    case saveVM = "save-vm"
    case guestPanicked = "guest-panicked"

    /// States `cont` cannot leave without a reset.
    public var needsReset: Bool { [.internalError, .shutdown, .guestPanicked, .watchdog].contains(self) }
}
