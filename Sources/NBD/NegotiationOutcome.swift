/// Where the option phase goes after one option.
enum NegotiationOutcome {
    /// Wait for the next option.
    case next
    /// NBD_OPT_ABORT: the replies are sent, then the connection closes quietly.
    case abort
    /// Drop the connection, for this reason (QEMU logs it).
    case close(String)
    /// GO or EXPORT_NAME succeeded: transmission on this export.
    case transmission(NbdExport)
}
