/// Why the flow stopped: the exit status it ends with and the message for the user.
struct MigrationFailure: Error, Sendable {
    let status: ExitStatus
    let message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}
