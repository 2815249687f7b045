import Foundation
import Testing

/// Each bad command line gives one line naming the option and the problem, and exit status 1.
@Suite struct CommandLineTests {
    static let cases: [([String], String)] = [
        (["-foo"], "svmm: -foo: invalid option"),
        (["-m"], "svmm: -m: requires an argument"),
        (["-m", "abc"], "svmm: -m abc: Parameter 'size' expects a non-negative number below 2^64"),
        (["-blockdev", "driver=file,node-name=d0,filename=/nonexistent/x"],
         "svmm: -blockdev driver=file,node-name=d0,filename=/nonexistent/x: Could not open '/nonexistent/x': No such file or directory"),
        (["-blockdev", "driver=file,node-name=d0,filename=/tmp/x,cache.direct=off,aio=native"],
         "svmm: -blockdev driver=file,node-name=d0,filename=/tmp/x,cache.direct=off,aio=native: aio=native was specified, but it requires cache.direct=on, which was not specified."),
        (["-blockdev", "driver=file,filename=/tmp/x"],
         "svmm: -blockdev driver=file,filename=/tmp/x: 'node-name' must be specified for the root node"),
        (["-blockdev", "driver=bogus,node-name=a"],
         "svmm: -blockdev driver=bogus,node-name=a: Parameter 'driver' does not accept value 'bogus'"),
        (["-blockdev", "driver=file,node-name=d0,filename=/tmp/x,foo=1"],
         "svmm: -blockdev driver=file,node-name=d0,filename=/tmp/x,foo=1: Parameter 'foo' is unexpected"),
        (["-blockdev", "driver=file,node-name=d0,filename=/tmp/x,read-only=maybe"],
         "svmm: -blockdev driver=file,node-name=d0,filename=/tmp/x,read-only=maybe: Parameter 'read-only' expects 'on' or 'off'"),
        (["-device", "virtio-blk-device,drive=nope"],
         "svmm: -device virtio-blk-device,drive=nope: Property 'virtio-blk-device.drive' can't find value 'nope'"),
        (["-device", "foo"], "svmm: -device foo: 'foo' is not a valid device model name"),
        (["-serial", "bogus"], "svmm: -serial bogus: 'bogus' is not a valid char driver"),
        (["-smp", "2"], "svmm: -smp 2: only one vCPU is supported (smp.cpus=2)"),
        (["-kernel", "/nonexistent/kernel"], "svmm: could not open kernel file '/nonexistent/kernel': No such file or directory"),
        (["-kernel", "/etc/hostname"], "svmm: /etc/hostname: not an ELF file"),
        (["stray"], "svmm: invalid argument 'stray'"),
    ]

    @Test(arguments: cases)
    func badCommandLineGivesOneLineAndStatus1(arguments: [String], expected: String) throws {
        try TestEnvironment.requireKVMAndImages()
        let result = try ProcessResult.run(TestEnvironment.svmm, arguments, timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr == expected + "\n")
    }
}
