import Glibc
import Testing
@testable import Block

/// blkdebug's rule matching as QEMU 7.2's blkdebug_debug_event and rule_check do it.
@Suite struct BlkdebugRulesTests {
    @Test func anErrorIsArmedOnlyByItsEventAndThenFailsMatchingRequests() {
        let rules = BlkdebugRules([.injectError(.readAio, errno: ENOSPC)])
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read) == nil)
        rules.handle(.writeAio)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read) == nil)
        rules.handle(.readAio)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read)?.errno == ENOSPC)
        // Armed, it keeps failing (not `once`), every default type but block-status.
        #expect(rules.check(offset: 4096, bytes: 512, ioType: .write)?.errno == ENOSPC)
        #expect(rules.check(offset: 0, bytes: 0, ioType: .flush)?.errno == ENOSPC)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .blockStatus) == nil)
    }

    @Test func aSectorRuleFailsOnlyRequestsThatCoverThatSector() {
        let rules = BlkdebugRules([.injectError(.writeAio, sector: 8)])
        rules.handle(.writeAio)
        #expect(rules.check(offset: 0, bytes: 4096, ioType: .write) == nil)       // sectors 0-7
        #expect(rules.check(offset: 4096, bytes: 512, ioType: .write)?.errno == EIO)
        #expect(rules.check(offset: 3584, bytes: 1024, ioType: .write)?.errno == EIO)
        #expect(rules.check(offset: 0, bytes: 0, ioType: .flush) == nil)          // a flush has no bytes
    }

    @Test func onceRemovesTheRuleWhenItFires() {
        let rules = BlkdebugRules([.injectError(.readAio, once: true, immediately: true)])
        rules.handle(.readAio)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read).map { $0.immediately } == true)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read) == nil)
        rules.handle(.readAio)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read) == nil)
        #expect(rules.rules.isEmpty)
    }

    @Test func anIoTypeNarrowsTheRule() {
        let rules = BlkdebugRules([.injectError(.flushToDisk, ioType: .flush)])
        rules.handle(.flushToDisk)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .write) == nil)
        #expect(rules.check(offset: 0, bytes: 0, ioType: .flush)?.errno == EIO)
    }

    @Test func statesGateRulesAndTheFirstMatchingSetStateWins() {
        // mirror-ready-cancel-error's rules: the first flush moves to state 2, the second fails.
        let rules = BlkdebugRules([.injectError(.flushToDisk, state: 2, once: true, immediately: true),
                                   .setState(.flushToDisk, state: 1, newState: 2)])
        #expect(rules.state == 1)
        rules.handle(.flushToDisk)
        #expect(rules.state == 2)
        #expect(rules.check(offset: 0, bytes: 0, ioType: .flush) == nil)  // state 2 was not current yet
        rules.handle(.flushToDisk)
        #expect(rules.check(offset: 0, bytes: 0, ioType: .flush)?.errno == EIO)
        #expect(rules.check(offset: 0, bytes: 0, ioType: .flush) == nil)

        let several = BlkdebugRules([.setState(.readAio, newState: 5), .setState(.readAio, newState: 7)])
        several.handle(.readAio)
        #expect(several.state == 5)
    }

    @Test func anEventWithoutErrorRulesKeepsTheArmedOnes() {
        let rules = BlkdebugRules([.injectError(.readAio, sector: 0), .injectError(.writeAio, sector: 1),
                                   .setState(.flushToOS, newState: 3)])
        rules.handle(.readAio)
        rules.handle(.flushToOS)
        #expect(rules.state == 3)
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read) != nil)
        rules.handle(.writeAio)  // replaces the armed set
        #expect(rules.check(offset: 0, bytes: 512, ioType: .read) == nil)
        #expect(rules.check(offset: 512, bytes: 512, ioType: .read) != nil)
    }

    @Test func optionsAreReadWithQapiNamesAndRefusedInQemusWords() throws {
        let image: OptionValue = .object(["driver": .string("file"), "filename": .string("/x")])
        func refusal(_ extra: [String: OptionValue]) -> String? {
            var values: [String: OptionValue] = ["driver": .string("blkdebug"), "image": image, "node-name": .string("b")]
            values.merge(extra) { $1 }
            do { _ = try BlockdevOptions(values, fromCommandLine: false); return nil } catch { return error.description }
        }
        #expect(refusal(["inject-error": .array([.object(["event": .string("nosuch")])])]) == "Parameter 'event' does not accept value 'nosuch'")
        #expect(refusal(["inject-error": .array([.object([:])])]) == "Parameter 'inject-error[0].event' is missing")
        #expect(refusal(["inject-error": .array([.object(["event": .string("read_aio"), "foo": .int(1)])])]) == "Parameter 'inject-error[0].foo' is unexpected")
        #expect(refusal(["inject-error": .array([.object(["event": .string("read_aio"), "errno": .string("x")])])]) == "Invalid parameter type for 'inject-error[0].errno', expected: integer")
        #expect(refusal(["set-state": .array([.object(["event": .string("read_aio"), "state": .int(1)])])]) == "Parameter 'set-state[0].new_state' is missing")
        #expect(refusal(["foo": .int(1)]) == "Parameter 'foo' is unexpected")
        #expect(refusal(["align": .int(4096)]) == "blkdebug option 'align' is not supported by svmm")

        let values: [String: OptionValue] = ["driver": .string("blkdebug"), "image": image,
                                             "inject-error": .object(["0": .object(["event": .string("read_aio"), "sector": .string("3"), "once": .string("on")])])]
        let options = try BlockdevOptions(values, fromCommandLine: true)
        guard case .blkdebug(let blkdebug) = options.driver else { Issue.record("not blkdebug"); return }
        #expect(blkdebug.rules == [.injectError(.readAio, sector: 3, once: true)])
    }
}
