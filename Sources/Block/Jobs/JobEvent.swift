/// What a job reports (QEMU's JOB_STATUS_CHANGE and BLOCK_JOB_* events); the monitor turns
/// each into its QMP event.
public enum JobEvent {
    case statusChanged(Job)
    case ready(Job)
    case pending(Job)
    case completed(Job)
    case cancelled(Job)
    /// BLOCK_JOB_ERROR: `operation` "read" or "write", `action` what the policy did.
    case ioError(Job, operation: String, action: JobErrorAction)
}
