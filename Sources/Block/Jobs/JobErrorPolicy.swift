import Glibc

/// BlockdevOnError (on-source-error / on-target-error) as QEMU 7.2's block_job_error_action
/// resolves it: what a job does on an I/O error (and, as rerror/werror, a guest device: blk_get_error_action).
public enum JobErrorPolicy: String, CaseIterable, Sendable {
    case report, ignore, enospc, stop, auto

    /// The action for an error with `code`: `enospc` stops only on ENOSPC; `auto` reports.
    func action(for code: Int32) -> JobErrorAction {
        switch self {
        case .report, .auto: .report
        case .ignore: .ignore
        case .stop: .stop
        case .enospc: code == ENOSPC ? .stop : .report
        }
    }
}
