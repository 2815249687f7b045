import Glibc
import Testing
@testable import Block

/// blkdebug config files read as QEMU 7.2 reads them; bad ones refused with QEMU's text, and the
/// error names the line it is about.
@Suite struct BlkdebugConfigParserTests {
    @Test func groupsBecomeRulesInjectErrorsFirst() throws {
        let text = """
            # a comment

            [set-state]
            event = "read_aio"
            state = "1"
            new_state = "2"
            [inject-error "x"]
            event = "write_aio"
              errno = "28"
            sector = "3"
            once = "on"
            immediately = "off"
            iotype = "write"
            """
        let rules = try BlkdebugConfigParser.parse(text)
        #expect(rules == [.injectError(.writeAio, errno: ENOSPC, sector: 3, ioType: .write, once: true),
                          .setState(.readAio, state: 1, newState: 2)])
    }

    @Test(arguments: [
        ("[inject-error]\nevent = \"read_aio\"\nbogus line\n", 3, "Invalid parameter 'bogus'"),
        ("event = \"read_aio\"\n", 1, "no group defined"),
        ("[nosuch]\nevent = \"x\"\n", 1, "There is no option group 'nosuch'"),
        ("[inject-error]\nevent = \"nosuchevent\"\n", 2, "invalid parameter value: nosuchevent"),
        ("[inject-error]\n\nfoo = \"1\"\n", 3, "Invalid parameter 'foo'"),
        ("[inject-error]\nevent = \"read_aio\"\nerrno = \"abc\"\n", 3, "Parameter 'errno' expects a number"),
        ("[inject-error]\nerrno = \"5\"\n", 1, "Missing event name for rule"),
        ("[inject-error]\nevent = read_aio\n", 2, "invalid parameter value: "),
        ("[set-state]\nevent = \"read_aio\"\nonce = \"maybe\"\n", 3, "Invalid parameter 'once'"),
        ("[inject-error]\nevent = \"read_aio\"\nonce = \"maybe\"\n", 3, "Parameter 'once' expects 'on' or 'off'"),
    ])
    func badFilesAreRefusedNamingTheLine(text: String, line: Int, message: String) {
        #expect(throws: BlkdebugConfigError(line: line, message)) { try BlkdebugConfigParser.parse(text) }
    }

    @Test func aMissingFileSaysSo() {
        #expect(throws: BlkdebugConfigError(line: 0, "Could not read blkdebug config file: No such file or directory")) {
            try BlkdebugConfigParser.parseFile("/nonexistent/blkdebug.conf")
        }
    }
}
