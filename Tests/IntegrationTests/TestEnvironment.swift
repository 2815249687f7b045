import Foundation

/// Where the binaries under test are, and scratch files for one test.
enum TestEnvironment {
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var svmm: String {
        ProcessInfo.processInfo.environment["SVMM_BIN"] ?? packageRoot.appendingPathComponent(".build/debug/svmm").path
    }

    static var guestImage: String {
        ProcessInfo.processInfo.environment["GUEST_ELF"] ?? packageRoot.appendingPathComponent("guest-images/out/blkguest.elf").path
    }

    static let qemu = "/usr/bin/qemu-system-x86_64"

    /// Fails (never skips) when what the tests need is missing.
    static func requireKVMAndImages() throws {
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else { throw Failure("/dev/kvm is missing: these tests need KVM") }
        guard FileManager.default.fileExists(atPath: svmm) else { throw Failure("svmm binary not found at \(svmm): run `make test`") }
        guard FileManager.default.fileExists(atPath: guestImage) else { throw Failure("guest image not found at \(guestImage): run `make guest`") }
    }

    /// A fresh sparse file of `size` bytes in a temporary directory.
    static func scratchDisk(size: Int, name: String = "disk.raw") throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
        return path
    }
}
