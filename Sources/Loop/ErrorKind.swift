/// What kind of failure an error is, as QMP reports it (QEMU's ErrorClass, qapi/error.json):
/// the error's text says what happened in QEMU's words, its kind is what a caller branches on
/// and what the monitor sends as `class`. Most errors are generic, as most of QEMU's are.
public enum ErrorKind: String, Sendable, Equatable, CaseIterable {
    case generic = "GenericError"
    /// The command is not in the table, or not allowed before/after capabilities negotiation.
    case commandNotFound = "CommandNotFound"
    /// A job or device that is not running: `Block job 'x' not found` (QEMU's find_block_job).
    case deviceNotActive = "DeviceNotActive"
    /// A device by that name does not exist (QEMU's qmp_get_blk, device_del).
    case deviceNotFound = "DeviceNotFound"
    /// KVM lacks a capability the request needs.
    case kvmMissingCap = "KVMMissingCap"

    /// The `class` member of a QMP error reply.
    public var qmpClass: String { rawValue }
}
