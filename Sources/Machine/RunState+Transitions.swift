/// QEMU 7.2's runstate_transitions_def (softmmu/runstate.c): the only run-state changes there are.
/// `Machine` changes its state through `canChange(to:)` alone, so an impossible change is refused
/// in this one place (QEMU aborts on one: "invalid runstate transition").
extension RunState {
    private static let transitions: [RunState: Set<RunState>] = [
        .debug: [.running, .finishMigrate, .prelaunch, .suspended],
        .inmigrate: [.internalError, .ioError, .paused, .running, .shutdown, .suspended, .watchdog,
                     .guestPanicked, .finishMigrate, .prelaunch, .postmigrate, .colo],
        .internalError: [.paused, .finishMigrate, .prelaunch],
        .ioError: [.running, .finishMigrate, .prelaunch],
        .paused: [.running, .finishMigrate, .postmigrate, .prelaunch, .colo],
        .postmigrate: [.running, .finishMigrate, .prelaunch],
        .prelaunch: [.running, .finishMigrate, .inmigrate],
        .finishMigrate: [.running, .paused, .postmigrate, .prelaunch, .colo],
        .restoreVM: [.running, .prelaunch],
        .colo: [.running, .prelaunch, .shutdown],
        .running: [.debug, .internalError, .ioError, .paused, .finishMigrate, .restoreVM, .saveVM, .shutdown,
                   .watchdog, .guestPanicked, .colo, .suspended],
        .saveVM: [.running],
        .shutdown: [.paused, .finishMigrate, .prelaunch, .colo],
        .suspended: [.running, .finishMigrate, .prelaunch, .colo],
        .watchdog: [.running, .finishMigrate, .prelaunch, .colo],
        .guestPanicked: [.running, .finishMigrate, .prelaunch],
    ]

    /// runstate_set's check: staying in the same state is always allowed.
    public func canChange(to next: RunState) -> Bool {
        next == self || Self.transitions[self]?.contains(next) == true
    }
}
