/// Why the sender stopped before completing: cancelled, or an error for error-desc.
enum MigrationFailure: Error {
    case cancelled
    case failed(String)

    init(_ error: MigrationError) { self = .failed(error.description) }
}
