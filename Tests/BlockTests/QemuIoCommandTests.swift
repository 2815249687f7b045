import Testing
@testable import Block

/// HMP qemu-io's command lines read as qemu-io-cmds.c reads them, and its report as it prints it.
@Suite struct QemuIoCommandTests {
    @Test func readAndWriteTakeQemuIosOptionsAndNumbers() throws {
        #expect(try QemuIoCommand.parse("write -P 2 0 64k") == .write(offset: 0, length: 65536, pattern: 2, zeroes: false,
                                                                     unmap: false, quiet: false, async: false))
        #expect(try QemuIoCommand.parse("write -z -u 1M 4k") == .write(offset: 1 << 20, length: 4096, pattern: 0xcd, zeroes: true,
                                                                      unmap: true, quiet: false, async: false))
        #expect(try QemuIoCommand.parse("read -qP0x5a 512 1k") == .read(offset: 512, length: 1024, pattern: 0x5a, quiet: true, async: false))
        #expect(try QemuIoCommand.parse("aio_write -P 7 8k 4k") == .write(offset: 8192, length: 4096, pattern: 7, zeroes: false,
                                                                         unmap: false, quiet: false, async: true))
        #expect(try QemuIoCommand.parse("flush") == .flush)
        #expect(try QemuIoCommand.parse("   ") == nil)
    }

    @Test(arguments: [
        ("bogus", "command \"bogus\" not found\n"),
        ("read 0", "bad argument count 1 to read, expected at least 2 arguments\n"),
        ("read x 512", "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- x\n"),
        ("write -P 300 0 512", "300 is not a valid pattern byte\n"),
        ("write -u 0 512", "-u requires -z to be specified\n"),
        ("write -z -P 1 0 512", "-z and -P cannot be specified at the same time\n"),
        ("read 0 99999999999E", "Argument '99999999999E' is too large\n"),
        ("flush now", "bad argument count 1 to flush, expected 0 arguments\n"),
    ])
    func badLinesGetQemuIosText(line: String, output: String) {
        do {
            _ = try QemuIoCommand.parse(line)
            Issue.record("\(line) was accepted")
        } catch {
            #expect(error.output == output)
        }
    }

    @Test func theReportHasQemuIosUnitsAndRounding() {
        #expect(QemuIoReport.size(65536) == "64 KiB")
        #expect(QemuIoReport.size(512) == "512 bytes")
        #expect(QemuIoReport.size(3_486_000) == "3.325 MiB")
        #expect(QemuIoReport.timeText(0.02) == "00.02 sec")
        #expect(QemuIoReport.fixed(53.20199, 4) == "53.2020")
        #expect(QemuIoReport.transfer("wrote", offset: 0, length: 65536, seconds: 0.5)
                    == "wrote 65536/65536 bytes at offset 0\n64 KiB, 1 ops; 00.50 sec (128 KiB/sec and 2.0000 ops/sec)\n")
    }
}
