import QmpClient
import QmpJSON
import Testing
@testable import svmm_migrate

/// The tool's pure parts on recorded answers: the device's edge in a graph as QEMU 7.2 gave
/// it, the progress line, the QAPI address shapes, the exit-status table.
@Suite struct SvmmMigrateTests {
    /// x-debug-query-block-graph of a QEMU 7.2 destination with a writable NBD export of d0
    /// (raw d0 over file f0; vblk0's edge after the export activated it: rw, shares everything).
    static let graph = JSONValue.members(["edges": .array([
        edge(parent: 2, child: 4, "file", ["write", "consistent-read"], ["write-unchanged", "write", "consistent-read"]),
        edge(parent: 3, child: 2, "root", ["write", "consistent-read"], ["write-unchanged", "write", "consistent-read"]),
        edge(parent: 1, child: 2, "root", ["write", "consistent-read"], ["resize", "write-unchanged", "write", "consistent-read"]),
    ]), "nodes": .array([
        node(2, "d0", "block-driver"), node(4, "f0", "block-driver"), node(3, "", "block-backend"), node(1, "vblk0", "block-backend"),
    ])])

    static func edge(parent: Int64, child: Int64, _ name: String, _ perm: [String], _ shared: [String]) -> JSONValue {
        .members(["name": .string(name), "parent": .int(parent), "child": .int(child),
                  "perm": .array(perm.map(JSONValue.string)), "shared-perm": .array(shared.map(JSONValue.string))])
    }

    static func node(_ id: Int64, _ name: String, _ type: String) -> JSONValue {
        .members(["name": .string(name), "type": .string(type), "id": .int(id)])
    }

    @Test func findsTheGuestDeviceOnTheTargetNodeAndJudgesItsPermissions() throws {
        let device = try DevicePermissions.find(in: Self.graph, device: nil, node: "d0").get()
        #expect(device == DevicePermissions(device: "vblk0", node: "d0", perm: ["write", "consistent-read"],
                                            shared: ["resize", "write-unchanged", "write", "consistent-read"]))
        #expect(!device.inForce)
        let tightened = DevicePermissions(device: "vblk0", node: "d0", perm: ["write", "consistent-read"],
                                          shared: ["resize", "write-unchanged", "consistent-read"])
        #expect(tightened.inForce)
        #expect(try DevicePermissions.find(in: Self.graph, device: "vblk0", node: "other").get().node == "d0")
    }

    @Test func aMissingDeviceIsARefusalThatSaysWhatThereIs() {
        guard case .failure(let failure) = DevicePermissions.find(in: Self.graph, device: nil, node: "f0") else {
            Issue.record("found a device on f0")
            return
        }
        #expect(failure.status == .refusedBeforeSwitchOver)
        #expect(failure.message == "destination: no single guest device on node 'f0' in x-debug-query-block-graph (devices: 'vblk0' on 'd0'); name it with --guest-device")
        guard case .failure(let named) = DevicePermissions.find(in: Self.graph, device: "vblk9", node: "d0") else { return }
        #expect(named.message.hasPrefix("destination: no guest device 'vblk9' in"))
    }

    @Test func theProgressLineReadsLikeVirshs() {
        var progress = MigrationProgress()
        #expect(progress.line == "Migration: [mirror   - %, RAM   - %]")
        progress.update(jobs: .array([.members(["device": .string("other"), "offset": .int(1), "len": .int(1)]),
                                      .members(["device": .string("j0"), "offset": .int(31981568), "len": .int(33554432)])]),
                        jobId: "j0")
        progress.update(migration: .members(["status": .string("active"), "expected-downtime": .int(300),
                                             "ram": .members(["total": .int(67174400), "remaining": .int(33587200),
                                                              "dirty-pages-rate": .int(120)])]))
        #expect(progress.line == "Migration: [mirror  95 %, RAM  50 %] dirty rate 120 pages/s, expected downtime 300 ms (active)")
        // A len of 0 (nothing to copy yet) and an offset past len (it grew meanwhile) stay in range.
        progress.update(jobs: .array([.members(["device": .string("j0"), "offset": .int(9), "len": .int(0)])]), jobId: "j0")
        #expect(progress.mirrorPercent == 95)
        progress.update(jobs: .array([.members(["device": .string("j0"), "offset": .int(20), "len": .int(10)])]), jobId: "j0")
        #expect(progress.mirrorPercent == 100)
    }

    @Test func addressesTakeBothQapiShapes() {
        let unix = QmpAddress.unix(path: "/run/nbd.sock")
        #expect(unix.legacySocketAddress.serialized == #"{"type": "unix", "data": {"path": "/run/nbd.sock"}}"#)
        #expect(unix.flatSocketAddress.serialized == #"{"type": "unix", "path": "/run/nbd.sock"}"#)
        let tcp = QmpAddress.tcp(host: "10.0.0.2", port: "10809")
        #expect(tcp.legacySocketAddress.serialized == #"{"type": "inet", "data": {"host": "10.0.0.2", "port": "10809"}}"#)
        #expect(tcp.flatSocketAddress.serialized == #"{"type": "inet", "host": "10.0.0.2", "port": "10809"}"#)
    }

    @Test func everyExitStatusIsDistinctAndListedInHelp() {
        let codes = ExitStatus.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count && !codes.contains(1) && !codes.contains(64))
        for status in ExitStatus.allCases {
            #expect(ExitStatus.helpText.contains("  \(status.rawValue)  \(status.meaning)"))
            #expect(status.meaning.count <= 74, "\(status): too long for --help's 80 columns")
        }
    }
}
