import Foundation
import Testing

/// The command line qemu-iotests' harness gives QEMU_PROG: its probes (exit 0, stdout parsed)
/// and the options' errors, in QEMU 7.2's words (each text checked against qemu-system-x86_64).
@Suite struct IotestsCommandLineTests {
    /// testenv.py's get_default_machine: the line ending ` (default)`, its first word.
    @Test func machineHelpNamesMicrovmAsTheDefault() throws {
        try TestEnvironment.requireKVMAndImages()
        let result = try ProcessResult.run(TestEnvironment.svmm, ["-machine", "help"], timeout: 30)
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first == "Supported machines are:")
        let defaults = lines.filter { $0.hasSuffix(" (default)") }
        #expect(defaults.count == 1)
        #expect(defaults.first?.split(separator: " ").first == "microvm")
        #expect(lines.contains { $0.hasPrefix("none ") })
    }

    /// iotests.py's supported_formats: the first line split at ':', then at spaces.
    @Test func formatHelpListsTheDriversOnItsFirstLine() throws {
        try TestEnvironment.requireKVMAndImages()
        let result = try ProcessResult.run(TestEnvironment.svmm,
                                           ["-nodefaults", "-display", "none", "-accel", "qtest", "-drive", "format=help"], timeout: 30)
        #expect(result.status == 0)
        let first = result.stdout.split(separator: "\n").first ?? ""
        #expect(first.hasPrefix("Supported formats: "))
        let formats = Set(first.split(separator: ":")[1].split(separator: " ").map(String.init))
        #expect(formats.isSuperset(of: ["file", "raw", "qcow2", "null-co", "nbd"]))
    }

    /// iotests.py's _verify_virtio_blk: `-M none -device help` must mention virtio-blk.
    @Test func deviceHelpOnTheNoneMachineListsVirtioBlk() throws {
        try TestEnvironment.requireKVMAndImages()
        let result = try ProcessResult.run(TestEnvironment.svmm,
                                           ["-nodefaults", "-display", "none", "-accel", "qtest", "-M", "none", "-device", "help"], timeout: 30)
        #expect(result.status == 0)
        #expect(result.stdout.contains("name \"virtio-blk-device\", bus virtio-bus, alias \"virtio-blk\""))
    }

    static let cases: [([String], String)] = [
        (["-M", "foo"], "svmm: unsupported machine type\nUse -machine help to list supported machines"),
        (["-machine", "microvm,foo=1"], "svmm: -machine microvm,foo=1: Property 'microvm-machine.foo' not found"),
        (["-machine", "accel=foo"], "svmm: invalid accelerator foo"),
        (["-accel", "foo"], "svmm: -accel foo: invalid accelerator foo"),
        (["-vga", "foo"], "svmm: unknown vga type: foo"),
        (["-drive", "if=bogus,file=/dev/null"], "svmm: -drive if=bogus,file=/dev/null: unsupported bus type 'bogus'"),
        (["-chardev", "socket,id=mon,fd=abc"], "svmm: -chardev socket,id=mon,fd=abc: Unable to parse FD number abc"),
        (["-chardev", "socket,id=mon,path=/x,wait=off"],
         "svmm: -chardev socket,id=mon,path=/x,wait=off: 'wait' option is incompatible with socket in client connect mode"),
        (["-chardev", "socket,id=mon,path=/nonexistent/mon.sock", "-mon", "chardev=mon,mode=control"],
         "svmm: -chardev socket,id=mon,path=/nonexistent/mon.sock: Failed to connect to '/nonexistent/mon.sock': No such file or directory"),
        (["-chardev", "socket,id=mon,fd=99", "-mon", "chardev=mon,mode=control"],
         "svmm: -chardev socket,id=mon,fd=99: File descriptor '99' is not a socket"),
        (["-qtest", "unix:path=/nonexistent/qtest.sock"],
         "svmm: Failed to connect to '/nonexistent/qtest.sock': No such file or directory\nsvmm: Failed to initialize device for qtest: \"unix:path=/nonexistent/qtest.sock\""),
        (["-qtest", "bogus:x"], "svmm: 'bogus:x' is not a valid char driver\nsvmm: Failed to initialize device for qtest: \"bogus:x\""),
        (["-qtest", "chardev:nope"], "svmm: Failed to initialize device for qtest: \"chardev:nope\""),
        (["-object", "foo,id=x"], "svmm: -object foo,id=x: Parameter 'qom-type' does not accept value 'foo'"),
        (["-object", "iothread"], "svmm: -object iothread: Parameter 'id' is missing"),
        (["-object", "iothread,id=io0,foo=1"], "svmm: -object iothread,id=io0,foo=1: Invalid parameter 'foo'"),
        // The iothread's polling properties and the device's link to it, as QEMU 7.2 words them.
        (["-object", "iothread,id=io0,poll-max-ns=abc"], "svmm: -object iothread,id=io0,poll-max-ns=abc: Parameter 'poll-max-ns' expects an int64 value"),
        (["-object", "iothread,id=io0,poll-grow=-1"], "svmm: poll-grow value must be in range [0, 9223372036854775807]"),
        (["-object", "iothread,id=io0", "-object", "iothread,id=io0"], "svmm: -object iothread,id=io0: Duplicate ID 'io0' for object"),
        (["-object", "iothread,id=io0", "-blockdev", "null-co,node-name=n0", "-device", "virtio-blk,drive=n0,iothread=nope"],
         "svmm: -device virtio-blk,drive=n0,iothread=nope: Device 'nope' not found"),
        (["-incoming"], "svmm: -incoming: requires an argument"),
        // -blockdev's implied key is the driver (keyval_parse(optarg, "driver", ...)).
        (["-blockdev", "null-co,size=1G,node-name=a"], "svmm: -blockdev null-co,size=1G,node-name=a: Parameter 'size' expects integer"),
        (["-blockdev", "bogus,node-name=a"], "svmm: -blockdev bogus,node-name=a: Parameter 'driver' does not accept value 'bogus'"),
        // svmm's own words where QEMU has no such case (the none machine has no virtio-bus).
        (["-M", "none", "-blockdev", "null-co,node-name=n0", "-device", "virtio-blk,drive=n0"],
         "svmm: -device virtio-blk,drive=n0: No 'virtio-bus' bus found for device 'virtio-blk-device'"),
        (["-M", "none", "-drive", "if=virtio,id=drive0,file=/dev/null,format=raw"],
         "svmm: -drive if=virtio,id=drive0,file=/dev/null,format=raw: No 'virtio-bus' bus found for device 'virtio-blk-device'"),
        // -drive passes keys that are not its own to the format node, as drive_new does.
        (["-drive", "id=s,if=none,driver=raw,format=raw,file=/tmp/x"],
         "svmm: -drive id=s,if=none,driver=raw,format=raw,file=/tmp/x: Cannot specify both 'driver' and 'format'"),
        (["-drive", "if=none,id=d0,file=/dev/null,format=raw,bogus=1"],
         "svmm: -drive if=none,id=d0,file=/dev/null,format=raw,bogus=1: Block format 'raw' does not support the option 'bogus'"),
        (["-device", "virtio-blk,drive=nope"], "svmm: -device virtio-blk,drive=nope: Property 'virtio-blk-device.drive' can't find value 'nope'"),
        (["-accel", "kvm", "-drive", "if=virtio,id=drive0,file=/nonexistent/x,format=raw"],
         "svmm: -drive if=virtio,id=drive0,file=/nonexistent/x,format=raw: Could not open '/nonexistent/x': No such file or directory"),
    ]

    @Test(arguments: cases)
    func badValuesGiveQemusText(arguments: [String], expected: String) throws {
        try TestEnvironment.requireKVMAndImages()
        let result = try ProcessResult.run(TestEnvironment.svmm, arguments, timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr == expected + "\n")
    }

    /// The if=virtio drive's device is made and holds the image's write lock (a second svmm on the
    /// same image fails as QEMU does, naming the -drive).
    @Test func aDriveIfVirtioGetsADeviceThatTakesTheWriteLock() throws {
        try TestEnvironment.requireKVMAndImages()
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let drive = "if=virtio,id=drive0,file=\(disk),format=raw,cache=writeback,aio=threads"
        let first = try BackgroundProcess(TestEnvironment.svmm, ["-accel", "qtest", "-drive", drive])
        defer { first.stop() }
        // Up once qemu-io can no longer open the image for writing.
        var locked = false
        for _ in 0..<200 where !locked {
            let probe = try ProcessResult.run("/usr/bin/qemu-io", ["-f", "raw", "-c", "quit", disk], timeout: 30)
            locked = probe.status != 0 && (probe.stdout + probe.stderr).contains("Is another process using the image")
            if !locked { usleep(50_000) }
        }
        #expect(locked, "the if=virtio device never took the image's write lock")
        let second = try ProcessResult.run(TestEnvironment.svmm, ["-accel", "qtest", "-drive", drive], timeout: 30)
        #expect(second.status == 1)
        #expect(second.stderr == "svmm: -drive \(drive): Failed to get \"write\" lock\nIs another process using the image [\(disk)]?\n")
    }
}
