/// BlockErrorAction, as BLOCK_JOB_ERROR names it.
public enum JobErrorAction: String, Sendable {
    case ignore, report, stop
}
