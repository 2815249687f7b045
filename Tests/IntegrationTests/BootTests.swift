import Foundation
import Testing

/// Boots the tiny guest under real KVM with svmm (and QEMU, the reference) on real files.
@Suite(.serialized) struct BootTests {
    init() throws { try TestEnvironment.requireKVMAndImages() }

    func svmm(_ disk: String, append: String, readOnly: Bool = false, serial: String = "svmm-test",
              fileOptions: String = "") throws -> ProcessResult {
        try ProcessResult.run(TestEnvironment.svmm, [
            "-m", "64M", "-kernel", TestEnvironment.guestImage, "-append", append,
            "-blockdev", "driver=file,node-name=d0,filename=\(disk)" + (readOnly ? ",read-only=on" : "") + fileOptions,
            "-device", "virtio-blk-device,drive=d0,id=vblk0,serial=\(serial)",
        ])
    }

    /// Native AIO with O_DIRECT (the default), the thread pool with O_DIRECT, and buffered I/O.
    @Test(arguments: ["", ",aio=threads", ",cache.direct=off"])
    func selftestPassesAndLeavesThePatternOnDisk(fileOptions: String) throws {
        let disk = try TestEnvironment.scratchDisk(size: 16 << 20)
        let result = try svmm(disk, append: "mode=selftest", serial: "abc123", fileOptions: fileOptions)
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stdout.contains("ID: abc123"))
        #expect(result.stdout.contains("SELFTEST PASS"))
        let mismatch = GuestPattern.firstMismatch(in: try Data(contentsOf: URL(fileURLWithPath: disk)))
        #expect(mismatch == nil)
    }

    @Test func sameImagePassesUnderQEMUMicrovm() throws {
        let disk = try TestEnvironment.scratchDisk(size: 16 << 20)
        let result = try ProcessResult.run(TestEnvironment.qemu, [
            "-M", "microvm,accel=kvm,acpi=off", "-m", "64M", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-global", "virtio-mmio.force-legacy=false",
            "-kernel", TestEnvironment.guestImage, "-append", "mode=selftest",
            "-drive", "file=\(disk),format=raw,if=none,id=d0,cache=none,aio=native",
            "-device", "virtio-blk-device,drive=d0,serial=qemu", "-device", "isa-debug-exit,iobase=0x501,iosize=1",
        ])
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stdout.contains("SELFTEST PASS"))
        #expect(GuestPattern.firstMismatch(in: try Data(contentsOf: URL(fileURLWithPath: disk))) == nil)
    }

    @Test func readOnlyDriveRefusesTheGuestsWrite() throws {
        let disk = try TestEnvironment.scratchDisk(size: 4 << 20)
        let marker = Data((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 * 7) })
        try marker.write(to: URL(fileURLWithPath: disk))
        let result = try svmm(disk, append: "mode=selftest", readOnly: true)
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stdout.contains("SELFTEST PASS read-only"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: disk)) == marker)
    }

    @Test func serialOutputCanGoToAFile() throws {
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let log = disk + ".serial"
        let result = try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage, "-append", "mode=selftest", "-serial", "file:\(log)",
            "-blockdev", "driver=file,node-name=d0,filename=\(disk)", "-device", "virtio-blk-device,drive=d0",
        ])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("SELFTEST PASS"))
    }

    @Test func guestFailureCodeBecomesTheExitStatus() throws {
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let result = try svmm(disk, append: "mode=nosuchmode")
        #expect(result.status >= 3)
        #expect(result.stdout.contains("SELFTEST FAIL: unknown mode nosuchmode"))
    }
}

/// The tiny guest on qcow2 images svmm opens through its own block layer.
@Suite(.serialized) struct Qcow2BootTests {
    init() throws { try TestEnvironment.requireKVMAndImages() }

    func sha256(_ path: String) throws -> String {
        try ProcessResult.run("/usr/bin/sha256sum", [path]).stdout
    }

    @Test func selftestPassesOnQcow2WithABackingFileThatStaysUntouched() throws {
        let base = try TestEnvironment.scratchDisk(size: 0, name: "base.qcow2")
        let top = base.replacingOccurrences(of: "base.qcow2", with: "top.qcow2")
        #expect(try ProcessResult.run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", base, "16M"]).status == 0)
        #expect(try ProcessResult.run("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 0 1M", base]).status == 0)
        #expect(try ProcessResult.run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top]).status == 0)
        let baseBefore = try sha256(base)
        let result = try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage, "-append", "mode=selftest",
            "-blockdev", "driver=qcow2,node-name=d0,file.driver=file,file.filename=\(top)",
            "-device", "virtio-blk-device,drive=d0",
        ])
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(result.stdout.contains("SELFTEST PASS"))
        #expect(try sha256(base) == baseBefore)
        let check = try ProcessResult.run("/usr/bin/qemu-img", ["check", top])
        #expect(check.status == 0, "\(check.stdout)")
        #expect(check.stdout.contains("No errors were found on the image."))
        // What the guest wrote is what qemu-img reads back.
        let raw = top + ".raw"
        #expect(try ProcessResult.run("/usr/bin/qemu-img", ["convert", "-f", "qcow2", "-O", "raw", top, raw]).status == 0)
        #expect(GuestPattern.firstMismatch(in: try Data(contentsOf: URL(fileURLWithPath: raw))) == nil)
    }

    @Test func driveShorthandOpensQcow2() throws {
        let image = try TestEnvironment.scratchDisk(size: 0, name: "d.qcow2")
        #expect(try ProcessResult.run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "8M"]).status == 0)
        let result = try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage, "-drive", "file=\(image),format=qcow2,if=none,id=drive0",
            "-device", "virtio-blk-device,drive=drive0,id=vblk0",
        ])
        #expect(result.status == 1, "stdout: \(result.stdout) stderr: \(result.stderr)")
        #expect(try ProcessResult.run("/usr/bin/qemu-img", ["check", image]).status == 0)
    }
}
