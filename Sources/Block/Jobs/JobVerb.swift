import Glibc

/// What a user may ask of a job (QAPI JobVerb) and QEMU 7.2's table of the states that accept
/// each verb (job.c JobVerbTable).
public enum JobVerb: String, CaseIterable, Sendable {
    case cancel, pause, resume
    case setSpeed = "set-speed"
    case complete, finalize, dismiss

    static let acceptedIn: [JobVerb: Set<JobStatus>] = [
        .cancel: [.created, .running, .paused, .ready, .standby, .waiting, .pending],
        .pause: [.created, .running, .paused, .ready, .standby],
        .resume: [.created, .running, .paused, .ready, .standby],
        .setSpeed: [.created, .running, .paused, .ready, .standby],
        .complete: [.ready],
        .finalize: [.pending],
        .dismiss: [.concluded],
    ]

    public func isAccepted(in status: JobStatus) -> Bool {
        Self.acceptedIn[self, default: []].contains(status)
    }

    /// job_apply_verb: QEMU's refusal, word for word.
    func check(_ job: Job) throws(BlockError) {
        guard isAccepted(in: job.status) else {
            throw BlockError("Job '\(job.id)' in state '\(job.status.rawValue)' cannot accept command verb '\(rawValue)'", errno: EPERM)
        }
    }
}
