import Block
import Foundation
import Testing
@testable import NBD

/// The in-process server, driven by Debian's real clients.
@Suite(.serialized) struct ServerInteropTests {
    @Test func qemuImgInfoSeesTheExportOverAUnixSocket() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let output = try Tool.check("qemu-img", ["info", "--output=json", fixture.uri()])
        let info = try #require(try Tool.json(output.stdout) as? [String: Any])
        #expect(info["virtual-size"] as? Int == ExportFixture.size)
        #expect(info["format"] as? String == "raw")
    }

    @Test func nbdinfoReportsQEMUsFlagsAndBlockSizes() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let output = try Tool.check("nbdinfo", ["--json", fixture.uri()])
        #expect(output.stdout.contains("\"protocol\": \"newstyle-fixed\""))
        let info = try #require(try Tool.json(output.stdout) as? [String: Any])
        #expect(info["structured"] as? Bool == true)
        let export = try #require((info["exports"] as? [[String: Any]])?.first)
        #expect(export["export-size"] as? Int == ExportFixture.size)
        #expect(export["contexts"] as? [String] == ["base:allocation"])
        for flag in ["can_cache", "can_df", "can_fast_zero", "can_flush", "can_fua", "can_multi_conn", "can_trim", "can_zero"] {
            #expect(export[flag] as? Bool == true, "\(flag)")
        }
        #expect(export["is_read_only"] as? Bool == false)
        #expect(export["block_size_minimum"] as? Int == 1)
        #expect(export["block_size_preferred"] as? Int == 4096)
        #expect(export["block_size_maximum"] as? Int == 33_554_432)
    }

    @Test func nbdinfoListsEveryExportWithItsDescription() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        try fixture.addExport(name: "ro", writable: false, description: "a read-only view")
        let output = try Tool.check("nbdinfo", ["--list", "--json", fixture.uri("")])
        let info = try #require(try Tool.json(output.stdout) as? [String: Any])
        let exports = try #require(info["exports"] as? [[String: Any]])
        #expect(exports.compactMap { $0["export-name"] as? String } == ["exp", "ro"])
        let readOnly = try #require(exports.last)
        #expect(readOnly["description"] as? String == "a read-only view")
        #expect(readOnly["is_read_only"] as? Bool == true)
        #expect(readOnly["can_trim"] as? Bool == false)
        #expect(readOnly["can_zero"] as? Bool == false)
    }

    @Test func nbdinfoMapShowsTheHole() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let output = try Tool.check("nbdinfo", ["--map", fixture.uri()])
        let lines = output.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).prefix(3).joined(separator: " ") }
        #expect(lines == ["0 16777216 0", "16777216 16777216 3", "33554432 33554432 0"])
    }

    @Test func qemuImgConvertsOutOfAndIntoTheExport() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let out = fixture.path("out.raw")
        try Tool.check("qemu-img", ["convert", "-f", "raw", "-O", "raw", fixture.uri(), out])
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == ExportFixture.expectedImage())
        try Tool.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", out, fixture.uri()])

        let source = fixture.path("in.raw")
        try ExportFixture.pattern(count: ExportFixture.size, seed: 99).write(to: URL(fileURLWithPath: source))
        try Tool.check("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", source, fixture.uri()])
        try Tool.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", source, fixture.uri()])
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.imagePath)) == Data(contentsOf: URL(fileURLWithPath: source)))
    }

    @Test func nbdcopyCopiesOutAndIn() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        let out = fixture.path("out.raw")
        try Tool.check("nbdcopy", [fixture.uri(), out])
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == ExportFixture.expectedImage())

        let source = fixture.path("in.raw")
        let data = ExportFixture.pattern(count: ExportFixture.size, seed: 1234)
        try data.write(to: URL(fileURLWithPath: source))
        try Tool.check("nbdcopy", [source, fixture.uri()])
        let back = fixture.path("back.raw")
        try Tool.check("nbdcopy", [fixture.uri(), back])
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)) == data)
    }

    @Test func aReadOnlyExportRefusesWrites() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        try fixture.addExport(name: "ro", writable: false)
        let write = try Tool.run("qemu-io", ["-f", "raw", "-c", "write -P 1 0 4k", fixture.uri("ro")])
        #expect(write.status != 0)
        #expect(write.stderr.contains("Permission denied"))
        let read = try Tool.check("qemu-io", ["-r", "-f", "raw", "-c", "read 0 4k", fixture.uri("ro")])
        #expect(read.stdout.contains("read 4096/4096 bytes at offset 0"))
    }

    @Test func qemuIoWritesReachTheFile() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        try Tool.check("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 1M 64k", "-c", "write -z 2M 64k", "-c", "discard 3M 64k",
                                   "-c", "flush", "-c", "read -P 0x5a 1M 64k", "-c", "read -P 0 2M 64k", fixture.uri()])
        let image = try Data(contentsOf: URL(fileURLWithPath: fixture.imagePath))
        #expect(image[(1 << 20)..<(1 << 20) + 65536].allSatisfy { $0 == 0x5a })
        #expect(image[(2 << 20)..<(2 << 20) + 65536].allSatisfy { $0 == 0 })
    }

    @Test func servesOverTCPOnAnEphemeralLoopbackPort() throws {
        let fixture = try ExportFixture(inet: true)
        defer { fixture.shutdown() }
        #expect(fixture.port > 0)
        let output = try Tool.check("qemu-img", ["info", "--output=json", fixture.uri()])
        let info = try #require(try Tool.json(output.stdout) as? [String: Any])
        #expect(info["virtual-size"] as? Int == ExportFixture.size)
        let out = fixture.path("out.raw")
        try Tool.check("nbdcopy", [fixture.uri(), out])
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == ExportFixture.expectedImage())
    }

    @Test func maxConnectionsOneWithholdsMultiConn() throws {
        let fixture = try ExportFixture(maxConnections: 1)
        defer { fixture.shutdown() }
        let output = try Tool.check("nbdinfo", ["--json", fixture.uri()])
        let export = try #require(((try Tool.json(output.stdout) as? [String: Any])?["exports"] as? [[String: Any]])?.first)
        #expect(export["can_multi_conn"] as? Bool == false)
    }
}
