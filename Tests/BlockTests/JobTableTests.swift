@testable import Block
import Testing

/// The job state machine and verb table against QEMU 7.2's job.c, transcribed as its matrices.
@Suite struct JobTableTests {
    /// QEMU's order of JobStatus: U C R P Y S W D X E N.
    static let order: [JobStatus] = [.undefined, .created, .running, .paused, .ready, .standby, .waiting, .pending,
                                     .aborting, .concluded, .null]

    /// job.c JobSTT.
    static let qemuTransitions: [[Int]] = [
        /* U */ [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        /* C */ [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1],
        /* R */ [0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0],
        /* P */ [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        /* Y */ [0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0],
        /* S */ [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        /* W */ [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0],
        /* D */ [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0],
        /* X */ [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0],
        /* E */ [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        /* N */ [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]

    /// job.c JobVerbTable.
    static let qemuVerbs: [(JobVerb, [Int])] = [
        (.cancel, [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]),
        (.pause, [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
        (.resume, [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
        (.setSpeed, [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
        (.complete, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        (.finalize, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]),
        (.dismiss, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
    ]

    @Test func everyTransitionIsAllowedExactlyWhereQemusTableAllowsIt() {
        for (row, from) in Self.order.enumerated() {
            for (column, to) in Self.order.enumerated() {
                #expect(from.canMove(to: to) == (Self.qemuTransitions[row][column] == 1), "\(from) -> \(to)")
            }
        }
    }

    @Test func everyVerbIsAcceptedExactlyInTheStatesQemusTableNames() {
        #expect(Set(Self.qemuVerbs.map(\.0.rawValue)) == Set(JobVerb.allCases.map(\.rawValue)))
        for (verb, row) in Self.qemuVerbs {
            for (column, status) in Self.order.enumerated() {
                #expect(verb.isAccepted(in: status) == (row[column] == 1), "\(verb) in \(status)")
            }
        }
    }

    @Test func statusAndVerbNamesAreQapis() {
        #expect(JobStatus.allCases.map(\.rawValue) == ["undefined", "created", "running", "paused", "ready", "standby",
                                                       "waiting", "pending", "aborting", "concluded", "null"])
        #expect(JobVerb.setSpeed.rawValue == "set-speed")
    }
}
