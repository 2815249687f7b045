import Machine
import Testing

/// Run states change only as QEMU 7.2's runstate_transitions_def allows.
@Suite struct RunStateTests {
    @Test(arguments: [
        (RunState.prelaunch, RunState.running), (.running, .paused), (.paused, .running), (.prelaunch, .inmigrate),
        (.inmigrate, .paused), (.inmigrate, .running), (.running, .finishMigrate), (.finishMigrate, .postmigrate),
        (.postmigrate, .running), (.ioError, .running), (.running, .running),
    ])
    func qemusTransitionsAreAllowed(from: RunState, to: RunState) {
        #expect(from.canChange(to: to))
    }

    @Test(arguments: [
        (RunState.postmigrate, RunState.paused), (.running, .prelaunch), (.running, .inmigrate), (.paused, .inmigrate),
        (.shutdown, .running), (.saveVM, .paused), (.internalError, .running), (.restoreVM, .paused),
    ])
    func othersAreRefused(from: RunState, to: RunState) {
        #expect(!from.canChange(to: to))
    }
}
