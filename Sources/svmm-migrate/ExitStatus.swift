/// svmm-migrate's exit statuses, one per way the flow can end (listed in --help).
enum ExitStatus: Int32, CaseIterable, Sendable {
    case permissionsInForce = 0
    case unreachable = 2
    case refusedBeforeSwitchOver = 3
    case failedBeforeSwitchOver = 4
    case destinationNotRunning = 5
    case permissionsNotInForce = 6

    /// One line each, short enough for --help's 80 columns.
    var meaning: String {
        switch self {
        case .permissionsInForce: "the destination runs, its guest device's permissions in force"
        case .unreachable: "a VMM cannot be reached or does not speak QMP"
        case .refusedBeforeSwitchOver: "a step was refused before the switch-over; undone, the source runs on"
        case .failedBeforeSwitchOver: "mirror or migration failed or timed out before the switch-over; undone"
        case .destinationNotRunning: "after the switch-over the destination does not run (a step was refused)"
        case .permissionsNotInForce: "the destination runs, but its device still shares 'write' (QEMU 7.2)"
        }
    }

    /// The table for --help's discussion.
    static var helpText: String {
        "Exit status:\n" + allCases.map { "  \($0.rawValue)  \($0.meaning)" }.joined(separator: "\n")
            + "\n  64 bad command line"
    }
}
