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
        // Outside values that once trapped or were cut short; texts from qemu-system-x86_64 7.2.
        (["-m", "9999999999T"], "svmm: -m 9999999999T: Value '9999999999T' is out of range for parameter 'size'"),
        (["-m", "99999999999999999999"], "svmm: -m 99999999999999999999: Value '99999999999999999999' is out of range for parameter 'size'"),
        (["-m", "-1"], "svmm: -m -1: Parameter 'size' expects a non-negative number below 2^64"),
        (["-blockdev", "driver=null-co,size=9999999999T,node-name=a"],
         "svmm: -blockdev driver=null-co,size=9999999999T,node-name=a: Parameter 'size' expects integer"),
        (["-blockdev", "driver=null-co,size=9223372036854775808,node-name=a"],
         "svmm: -blockdev driver=null-co,size=9223372036854775808,node-name=a: Parameter 'size' expects integer"),
        (["-blockdev", "driver=null-co,size=1G,node-name=a"], "svmm: -blockdev driver=null-co,size=1G,node-name=a: Parameter 'size' expects integer"),
        // QEMU 7.2 aborts here, after printing this.
        (["-blockdev", "driver=null-co,size=-1,node-name=a"],
         "svmm: -blockdev driver=null-co,size=-1,node-name=a: Parameter 'size' expects a non-negative number below 2^64"),
        (["-blockdev", "driver=null-co,size=9223372035781033985,node-name=a"],
         "svmm: -blockdev driver=null-co,size=9223372035781033985,node-name=a: Could not refresh total sector count: File too large"),
        (["-blockdev", "driver=null-co,node-name=a", "-blockdev", "driver=raw,file=a,offset=-1,node-name=b"],
         "svmm: -blockdev driver=raw,file=a,offset=-1,node-name=b: Parameter 'offset' expects a non-negative number below 2^64"),
        (["-blockdev", "driver=file,filename=/tmp/x,node-name=a,read-only"],
         "svmm: -blockdev driver=file,filename=/tmp/x,node-name=a,read-only: Expected '=' after parameter 'read-only'"),
        (["-blockdev", "driver=null-co,node-name=a b#"], "svmm: -blockdev driver=null-co,node-name=a b#: Invalid node-name: 'a b#'"),
        (["-blockdev", "driver=null-co,node-name=#block123"], "svmm: -blockdev driver=null-co,node-name=#block123: Invalid node-name: '#block123'"),
        (["-blockdev", "driver=null-co,node-name=abcdefghijabcdefghijabcdefghij12"],
         "svmm: -blockdev driver=null-co,node-name=abcdefghijabcdefghijabcdefghij12: Node name too long"),
        (["-blockdev", "driver=null-co,node-name=n0", "-device", "virtio-blk-device,drive=n0,id=a b"],
         "svmm: -device virtio-blk-device,drive=n0,id=a b: Parameter 'id' expects an identifier"),
        (["-drive", "file=/tmp/x,format=raw,if=none,id=#x"], "svmm: -drive file=/tmp/x,format=raw,if=none,id=#x: Parameter 'id' expects an identifier"),
        (["-blockdev", String(repeating: "a.", count: 30000) + "b=1"],
         "svmm: -blockdev \(String(repeating: "a.", count: 30000))b=1: Parameter 'a' is nested more than 1024 levels deep"),
        ((0..<9).flatMap { ["-blockdev", "driver=null-co,node-name=n\($0)", "-device", "virtio-blk-device,drive=n\($0)"] },
         "svmm: -device virtio-blk-device,drive=n8: No 'virtio-bus' bus found for device 'virtio-blk-device'"),
    ]

    @Test(arguments: cases)
    func badCommandLineGivesOneLineAndStatus1(arguments: [String], expected: String) throws {
        try TestEnvironment.requireKVMAndImages()
        let result = try ProcessResult.run(TestEnvironment.svmm, arguments, timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr == expected + "\n")
    }
}

/// A kernel whose headers point outside the file is refused naming the field, never a trap.
@Suite struct HostileElfTests {
    /// A 64-byte x86-64 ELF header with `count` program headers at `phoff`, then `headers`.
    static func elf(phoff: UInt64, count: UInt16, headers: [UInt8] = []) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes.replaceSubrange(0..<6, with: [0x7f, 0x45, 0x4c, 0x46, 2, 1])
        bytes[18] = 62
        withUnsafeBytes(of: phoff.littleEndian) { bytes.replaceSubrange(32..<40, with: $0) }
        bytes[54] = 56
        withUnsafeBytes(of: count.littleEndian) { bytes.replaceSubrange(56..<58, with: $0) }
        return bytes + headers
    }

    /// One program header: type, file offset, physical address, file size, memory size.
    static func header(type: UInt32 = 1, offset: UInt64 = 0, physical: UInt64 = 0x100000, fileSize: UInt64 = 0, memorySize: UInt64 = 0) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 56)
        func put<T: FixedWidthInteger>(_ value: T, at position: Int) {
            withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(position..<position + MemoryLayout<T>.size, with: $0) }
        }
        put(type, at: 0)
        put(offset, at: 8)
        put(physical, at: 24)
        put(fileSize, at: 32)
        put(memorySize, at: 40)
        put(UInt64(1) << 63, at: 48)  // a hostile p_align too
        return bytes
    }

    static let cases: [([UInt8], String)] = [
        (elf(phoff: UInt64.max, count: 1), "program header table at e_phoff 18446744073709551615 (1 x 56 bytes) lies outside the file (64 bytes)"),
        (elf(phoff: 64, count: 2, headers: header()), "program header table at e_phoff 64 (2 x 56 bytes) lies outside the file (120 bytes)"),
        (elf(phoff: 64, count: 1, headers: header(offset: UInt64.max, fileSize: 16, memorySize: 16)),
         "program header 0: file range (offset 18446744073709551615, size 16) lies outside the file (120 bytes)"),
        (elf(phoff: 64, count: 1, headers: header(offset: 8, fileSize: UInt64.max, memorySize: UInt64.max)),
         "program header 0: file range (offset 8, size 18446744073709551615) lies outside the file (120 bytes)"),
        (elf(phoff: 64, count: 1, headers: header(type: 4, offset: 64, fileSize: UInt64.max - 63)),
         "program header 0: file range (offset 64, size 18446744073709551552) lies outside the file (120 bytes)"),
        (elf(phoff: 64, count: 1, headers: header(physical: UInt64.max - 0x7ff, fileSize: 0, memorySize: 0x1000)),
         "program header 0: segment at physical address 0xfffffffffffff800 with memory size 4096 ends beyond 2^64"),
        (elf(phoff: 64, count: 1, headers: header(fileSize: 64, memorySize: 16)),
         "program header 0: memory size 16 is smaller than its file size 64"),
    ]

    @Test(arguments: cases)
    func aHostileHeaderIsAnErrorNamingIt(image: [UInt8], problem: String) throws {
        try TestEnvironment.requireKVMAndImages()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-hostile-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).elf").path
        try Data(image).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessResult.run(TestEnvironment.svmm, ["-kernel", path], timeout: 30)
        #expect(result.status == 1)
        #expect(result.stderr == "svmm: \(path): \(problem)\n")
    }
}

/// Error lines and the usage text name the program as it was started (QEMU's error_report uses
/// argv[0]'s basename), so a wrapper or a symlink such as QEMU_PROG works with tools that strip it.
@Suite struct ProgramNameTests {
    @Test func errorsAndUsageNameTheProgramAsItWasStarted() throws {
        try TestEnvironment.requireKVMAndImages()
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("qemu-system-x86_64-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: TestEnvironment.svmm)
        defer { try? FileManager.default.removeItem(atPath: link) }
        let name = URL(fileURLWithPath: link).lastPathComponent
        let failed = try ProcessResult.run(link, ["-m", "abc"], timeout: 30)
        #expect(failed.status == 1)
        #expect(failed.stderr == "\(name): -m abc: Parameter 'size' expects a non-negative number below 2^64\n")
        let help = try ProcessResult.run(link, ["-help"], timeout: 30)
        #expect(help.status == 0 && help.stdout.contains("usage: \(name) [options]"))
        let version = try ProcessResult.run(TestEnvironment.svmm, ["-version", "-m", "abc"], timeout: 30)
        #expect(version.status == 0 && version.stdout.hasPrefix("svmm emulator version "))
    }
}
