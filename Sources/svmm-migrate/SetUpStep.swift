/// What the tool has set up on either VMM before the switch-over, and so must take back if the
/// flow fails there (newest first).
enum SetUpStep: Equatable, Sendable {
    case nbdServer
    case nbdNode(name: String)
    case mirrorJob(id: String)
    case migration

    var undoDescription: String {
        switch self {
        case .nbdServer: "destination nbd-server-stop"
        case .nbdNode(let name): "source blockdev-del \(name)"
        case .mirrorJob(let id): "source mirror job '\(id)' cancelled"
        case .migration: "source migrate_cancel"
        }
    }
}
