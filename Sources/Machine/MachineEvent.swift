import Block

/// Things the machine reports to its monitors (QMP turns them into events).
public enum MachineEvent: Sendable {
    case stop
    case resume
    case shutdown(guest: Bool, reason: String)
    /// BLOCK_IO_ERROR: a guest device's request failed and its error policy acted.
    case blockIoError(BlockIoErrorReport)
}
