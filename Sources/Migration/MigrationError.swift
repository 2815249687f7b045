/// A migration command refused, or a migration that failed, in QEMU's words where QEMU has them.
public struct MigrationError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    static let inProgress = MigrationError("There's a migration process in progress")
    static let waitingForIncoming = MigrationError("Guest is waiting for an incoming migration")
    static let badProtocol = MigrationError("Parameter 'uri' expects a valid migration protocol")
}
