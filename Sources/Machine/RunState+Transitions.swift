/// QEMU 7.2's runstate_transitions_def (softmmu/runstate.c): the only run-state changes there are.
/// `Machine` changes its state through `canChange(to:)` alone, so an impossible change is refused
/// in this one place (QEMU aborts on one: "invalid runstate transition"). A switch rather than a
/// table: a static dictionary of sets is built on first use, and that first use was a migration's
/// switch-over (60–100 µs of its downtime here).
extension RunState {
    /// runstate_set's check: staying in the same state is always allowed.
    public func canChange(to next: RunState) -> Bool {
        next == self || successors.contains(next)
    }

    private var successors: [RunState] {
        switch self {
        case .debug: [.running, .finishMigrate, .prelaunch, .suspended]
        case .inmigrate: [.internalError, .ioError, .paused, .running, .shutdown, .suspended, .watchdog,
                          .guestPanicked, .finishMigrate, .prelaunch, .postmigrate, .colo]
        case .internalError: [.paused, .finishMigrate, .prelaunch]
        case .ioError: [.running, .finishMigrate, .prelaunch]
        case .paused: [.running, .finishMigrate, .postmigrate, .prelaunch, .colo]
        case .postmigrate: [.running, .finishMigrate, .prelaunch]
        case .prelaunch: [.running, .finishMigrate, .inmigrate]
        case .finishMigrate: [.running, .paused, .postmigrate, .prelaunch, .colo]
        case .restoreVM: [.running, .prelaunch]
        case .colo: [.running, .prelaunch, .shutdown]
        case .running: [.debug, .internalError, .ioError, .paused, .finishMigrate, .restoreVM, .saveVM, .shutdown,
                        .watchdog, .guestPanicked, .colo, .suspended]
        case .saveVM: [.running]
        case .shutdown: [.paused, .finishMigrate, .prelaunch, .colo]
        case .suspended: [.running, .finishMigrate, .prelaunch, .colo]
        case .watchdog: [.running, .finishMigrate, .prelaunch, .colo]
        case .guestPanicked: [.running, .finishMigrate, .prelaunch]
        }
    }
}
