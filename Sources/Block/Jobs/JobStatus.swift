/// A job's state (QAPI JobStatus) and QEMU 7.2's transition table (job.c JobSTT).
public enum JobStatus: String, CaseIterable, Sendable {
    case undefined, created, running, paused, ready, standby, waiting, pending, aborting, concluded, null

    /// JobSTT: the states each state may move to.
    static let transitions: [JobStatus: Set<JobStatus>] = [
        .undefined: [.created],
        .created: [.running, .aborting, .null],
        .running: [.paused, .ready, .waiting, .aborting],
        .paused: [.running],
        .ready: [.standby, .waiting, .aborting],
        .standby: [.ready],
        .waiting: [.pending, .aborting],
        .pending: [.concluded, .aborting],
        .aborting: [.concluded, .aborting],
        .concluded: [.null],
        .null: [],
    ]

    public func canMove(to next: JobStatus) -> Bool {
        Self.transitions[self, default: []].contains(next)
    }
}
