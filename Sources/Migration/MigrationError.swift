import Loop

/// A migration command refused, or a migration that failed, in QEMU's words where QEMU has them,
/// with the kind QMP answers with: QEMU's migration errors are all GenericError, and one that
/// comes from a lower layer (a socket that would not open) keeps that layer's kind and text.
public struct MigrationError: KindedError, Equatable {
    public let description: String
    public let kind: ErrorKind

    public init(_ description: String, kind: ErrorKind = .generic) {
        self.description = description
        self.kind = kind
    }

    /// A lower layer's error as the migration's (`Failed to connect to '…': Connection refused`).
    public init(_ error: some KindedError) {
        self.init(error.description, kind: error.kind)
    }

    static let inProgress = MigrationError("There's a migration process in progress")
    static let waitingForIncoming = MigrationError("Guest is waiting for an incoming migration")
    static let badProtocol = MigrationError("Parameter 'uri' expects a valid migration protocol")
}
