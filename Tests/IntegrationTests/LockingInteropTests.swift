import Foundation
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

    /// Waits until QEMU holds the image's write lock (qemu-io is refused), however slow its start.
    func waitUntilLocked(_ disk: String, by qemu: BackgroundProcess) throws {
        let deadline = Date().addingTimeInterval(30)
        while try ProcessResult.run("/usr/bin/qemu-io", ["-f", "raw", "-c", "read 0 512", "-c", "write 0 512", disk]).status == 0 {
            guard qemu.process.isRunning, Date() < deadline else {
                throw TestEnvironment.Failure("QEMU never took the image lock: \(qemu.stderr)")
            }
            usleep(100_000)
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
