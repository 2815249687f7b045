/// Which VMM a command goes to; its raw value starts the messages about it.
enum Side: String, Sendable {
    case source, destination
}
