import Foundation
import Glibc
import Testing

/// svmm's image locks as QEMU's tools see them, and QEMU's as svmm sees them.
@Suite(.serialized) struct LockingInteropTests {
    init() throws { try TestEnvironment.requireKVMAndImages() }

    func idleGuest(on disk: String, shareRW: Bool = false) throws -> BackgroundProcess {
        let guest = try BackgroundProcess(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage, "-append", "mode=idle",
            "-blockdev", "driver=file,node-name=d0,filename=\(disk)",
            "-device", "virtio-blk-device,drive=d0,id=vblk0" + (shareRW ? ",share-rw=on" : ""),
        ])
        try guest.waitForOutput("IDLE")
        return guest
    }

    @Test func qemuToolsAreRefusedTheWriteLockOfARunningGuestsImage() throws {
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let guest = try idleGuest(on: disk)
        defer { guest.stop() }
        let qemuIO = try ProcessResult.run("/usr/bin/qemu-io", ["-f", "raw", "-c", "write 0 512", disk])
        #expect(qemuIO.status != 0)
        #expect(qemuIO.stderr.contains("Failed to get \"write\" lock"))
        let qemuImg = try ProcessResult.run("/usr/bin/qemu-img", ["convert", "-f", "raw", "-O", "raw", "-n", "/dev/null", disk])
        #expect(qemuImg.status != 0)
        // Reading while sharing is fine.
        let reader = try ProcessResult.run("/usr/bin/qemu-io", ["-r", "-U", "-f", "raw", "-c", "read 0 512", disk])
        #expect(reader.status == 0)
    }

    @Test func secondSvmmIsRefusedWithQEMUsMessage() throws {
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let guest = try idleGuest(on: disk)
        defer { guest.stop() }
        let second = try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage, "-append", "mode=idle",
            "-blockdev", "driver=file,node-name=d0,filename=\(disk)", "-device", "virtio-blk-device,drive=d0",
        ], timeout: 30)
        #expect(second.status == 1)
        #expect(second.stderr == "svmm: -device virtio-blk-device,drive=d0: Failed to get \"write\" lock\nIs another process using the image [\(disk)]?\n")
    }

    @Test func svmmIsRefusedAnImageQEMUWrites() throws {
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let qemu = try BackgroundProcess(TestEnvironment.qemu, [
            "-M", "microvm,accel=kvm", "-nodefaults", "-display", "none", "-S",
            "-blockdev", "driver=file,node-name=d0,filename=\(disk)", "-device", "virtio-blk-device,drive=d0",
        ])
        defer { qemu.stop() }
        try waitUntilLocked(disk, by: qemu)
        let svmm = try ProcessResult.run(TestEnvironment.svmm, [
            "-kernel", TestEnvironment.guestImage,
            "-blockdev", "driver=file,node-name=d0,filename=\(disk)", "-device", "virtio-blk-device,drive=d0",
        ], timeout: 30)
        #expect(svmm.status == 1)
        #expect(svmm.stderr.contains("Failed to get \"write\" lock"))
    }

    /// Waits until QEMU holds the lock byte that unshares "write" (QEMU's lock bytes: 100 + perm
    /// bit for what it uses, 200 + bit for what it does not share; write is bit 1), however slow
    /// its start. Read from /proc/locks: probing with a writer of our own (qemu-io) would race
    /// QEMU's open, and QEMU exits when it loses.
    func waitUntilLocked(_ disk: String, by qemu: BackgroundProcess) throws {
        var info = stat()
        guard stat(disk, &info) == 0 else { throw TestEnvironment.Failure("stat \(disk): errno \(errno)") }
        let deadline = Date().addingTimeInterval(30)
        while !(try Self.lockHeld(inode: UInt64(info.st_ino), byte: 201)) {
            guard qemu.process.isRunning, Date() < deadline else {
                throw TestEnvironment.Failure("QEMU never took the image lock: \(qemu.stderr)")
            }
            usleep(100_000)
        }
    }

    /// Whether /proc/locks lists an OFD lock on the file with that inode covering `byte`
    /// ("1: OFDLCK ADVISORY READ -1 08:01:1234 201 201").
    static func lockHeld(inode: UInt64, byte: UInt64) throws -> Bool {
        let table = try String(contentsOfFile: "/proc/locks", encoding: .utf8)
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 8, fields[1] == "OFDLCK", let id = fields[5].split(separator: ":").last,
                  UInt64(id) == inode, let start = UInt64(fields[6]) else { return false }
            let end = fields[7] == "EOF" ? UInt64.max : UInt64(fields[7]) ?? 0
            return start <= byte && byte <= end
        }
    }

    @Test func shareRWOnBothLetsTwoGuestsWrite() throws {
        let disk = try TestEnvironment.scratchDisk(size: 1 << 20)
        let first = try idleGuest(on: disk, shareRW: true)
        defer { first.stop() }
        let second = try idleGuest(on: disk, shareRW: true)
        second.stop()
    }
}
