@testable import Block
import Foundation
import Glibc
import Testing

/// The mirror job on real nodes without a guest: a BlockBackend stands in for the device.
@Suite struct MirrorJobTests {
    let fixture: Qcow2Fixture
    let graph: BlockGraph
    let loop: PumpLoop
    /// Job events as "event status", in order.
    let events = EventLog()

    final class EventLog {
        var entries: [String] = []
    }

    init() throws {
        fixture = try Qcow2Fixture()
        graph = fixture.graph
        loop = PumpLoop(aio: fixture.aio)
        graph.runSoon = { [loop] job in loop.runSoon(job) }
        let events = self.events
        graph.jobs.onEvent = { event in
            switch event {
            case .statusChanged(let job): events.entries.append(job.status.rawValue)
            case .ready: events.entries.append("READY")
            case .pending: events.entries.append("PENDING")
            case .completed(let job): events.entries.append("COMPLETED" + (job.errorText.map { " \($0)" } ?? ""))
            case .cancelled: events.entries.append("CANCELLED")
            case .ioError(_, let operation, let action): events.entries.append("ERROR \(operation) \(action.rawValue)")
            }
        }
    }

    func nullNode(_ name: String, size: Int64 = 4 << 20) throws -> BlockNode {
        let node = BlockNode(nodeName: name, driverName: "null-co", driver: NullDriver(size: size, readZeroes: true), readOnly: false)
        try graph.add(node)
        return node
    }

    func device(on node: BlockNode) throws -> BlockBackend {
        let backend = BlockBackend(graph: graph, perm: [.consistentRead, .write], shared: [.consistentRead, .writeUnchanged, .resize])
        try backend.insert(node)
        backend.attachDevice("vblk0", incomingMigration: false)
        return backend
    }

    @Test func aMirrorBetweenNullNodesGoesThroughQemusStatesAndMovesTheDevice() throws {
        let source = try nullNode("src")
        let target = try nullNode("tgt")
        let backend = try device(on: source)
        let job = try graph.startMirror(device: "src", target: "tgt", options: MirrorOptions(jobID: "job0", sync: .full), loop: loop)
        #expect(backend.node?.driverName == "mirror_top")
        #expect(source.dirtyBitmaps.count == 1 && source.dirtyBitmaps[0].name.isEmpty)
        try loop.pump { job.isReady }
        #expect(throws: BlockError.self) { try job.userFinalize() }
        try job.userComplete()
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(events.entries == ["created", "running", "ready", "READY", "waiting", "pending", "COMPLETED", "concluded", "null"])
        #expect(backend.node === target)
        #expect(source.parents.isEmpty && source.dirtyBitmaps.isEmpty)
        #expect(!graph.nodes.contains { $0.driverName == "mirror_top" })
        #expect(job.progressCurrent == 4 << 20 && job.progressTotal == 4 << 20)
    }

    @Test func theJobIsNamedInPermissionConflictsAndTheTargetTakesNoConsistentRead() throws {
        let source = try nullNode("src")
        let target = try nullNode("tgt")
        _ = try device(on: source)
        let job = try graph.startMirror(device: "src", target: "tgt", options: MirrorOptions(jobID: "job0", sync: .none), loop: loop)
        // The job shares neither resize on the source nor anything but write-unchanged on the target.
        let resizer = BlockBackend(graph: graph, perm: [.resize], shared: .all)
        #expect(throws: BlockError("Permission conflict on node 'src': permissions 'resize' are both required by an unnamed block device (uses node 'src' as 'root' child) and unshared by mirror job 'job0' (uses node 'src' as 'source' child).", errno: EPERM)) {
            try resizer.insert(source)
        }
        #expect(!target.cumulativePermissions.perm.contains(.consistentRead))
        #expect(target.cumulativePermissions.perm.contains(.write))
        #expect(throws: BlockError("Node 'src' is busy: block device is in use by block job: mirror", errno: EBUSY)) {
            try source.checkNotBlocked(.externalSnapshot)
        }
        try job.userCancel(force: true)
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(events.entries.suffix(4) == ["aborting", "CANCELLED", "concluded", "null"])
        #expect(target.parents.isEmpty)
        try resizer.insert(source)
    }

    @Test func aMismatchedTargetFailsTheJobWithQemusText() throws {
        _ = try nullNode("src")
        _ = try nullNode("tgt", size: 1 << 20)
        _ = try graph.startMirror(device: "src", target: "tgt", options: MirrorOptions(jobID: "job0", sync: .full), loop: loop)
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(events.entries == ["created", "running", "aborting", "COMPLETED Source and target image have different sizes",
                                   "concluded", "null"])
    }

    @Test func bulkCopyBetweenQcow2FilesWhileTheDeviceWritesThenComplete() throws {
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("a.qcow2"), "8M")
        _ = try fixture.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x61 0 6M", fixture.path("a.qcow2"))
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("b.qcow2"), "8M")
        let sourceDriver = try fixture.qcow2("a.qcow2")
        let targetDriver = try fixture.qcow2("b.qcow2")
        let source = try #require(graph.nodes.first { $0.driver === sourceDriver })
        let target = try #require(graph.nodes.first { $0.driver === targetDriver })
        let backend = try device(on: source)
        var options = MirrorOptions(jobID: "job0", sync: .full)
        options.bufSize = 1 << 20
        let job = try graph.startMirror(device: source.nodeName, target: target.nodeName, options: options, loop: loop)
        // Writes through the device while the bulk pass runs: marked, copied again.
        var written = 0
        for index in 0..<16 {
            let buffer = Qcow2Fixture.buffer(Qcow2Fixture.pattern(0x7a, 65536))
            backend.write(at: Int64(index) * 512 * 1024, from: IoVector(buffer)) { result in
                buffer.deallocate()
                if case .success = result { written += 1 }
            }
        }
        try loop.pump { job.isReady && written == 16 }
        try job.userComplete()
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(backend.node === target)
        #expect(events.entries.contains("COMPLETED"))
        // The source's cached metadata (the clusters the device allocated) reaches its file.
        var flushed = false
        source.flush { _ in flushed = true }
        try loop.pump { flushed }
        let compare = try fixture.run("qemu-img", ["compare", "-U", fixture.path("a.qcow2"), fixture.path("b.qcow2")])
        #expect(compare.status == 0, "\(compare.output)")
    }

    func failingTarget() throws -> FailingDriver {
        let driver = FailingDriver(size: 4 << 20)
        driver.failWrites = true
        try graph.add(BlockNode(nodeName: "tgt", driverName: "null-co", driver: driver, readOnly: false))
        return driver
    }

    @Test func aTargetErrorWithReportFailsTheJobWithTheErrnoText() throws {
        _ = try nullNode("src")
        _ = try failingTarget()
        _ = try graph.startMirror(device: "src", target: "tgt", options: MirrorOptions(jobID: "job0", sync: .full), loop: loop)
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(events.entries.first { $0.hasPrefix("ERROR") } == "ERROR write report")
        #expect(events.entries.suffix(4) == ["aborting", "COMPLETED Input/output error", "concluded", "null"])
    }

    @Test func aTargetErrorWithStopPausesTheJobUntilItIsResumed() throws {
        _ = try nullNode("src")
        let target = try failingTarget()
        var options = MirrorOptions(jobID: "job0", sync: .full)
        options.onTargetError = .stop
        let job = try graph.startMirror(device: "src", target: "tgt", options: options, loop: loop)
        try loop.pump { job.status == .paused }
        #expect(events.entries.contains("ERROR write stop"))
        #expect(job.ioStatus == "failed" && job.userPaused)
        target.failWrites = false
        try job.userResume()
        try loop.pump { job.isReady }
        #expect(job.ioStatus == "ok")
        try job.userCancel(force: false)
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(events.entries.suffix(3) == ["COMPLETED", "concluded", "null"])
    }

    @Test func aTargetErrorWithIgnoreRetriesWithoutHoldingTheLoopAndCatchesUp() throws {
        _ = try nullNode("src")
        let target = try failingTarget()
        var options = MirrorOptions(jobID: "job0", sync: .full)
        options.onTargetError = .ignore
        let job = try graph.startMirror(device: "src", target: "tgt", options: options, loop: loop)
        try loop.pump { events.entries.filter { $0 == "ERROR write ignore" }.count >= 3 }
        #expect(!job.isReady && job.status == .running)
        target.failWrites = false
        try loop.pump { job.isReady }
        try job.userCancel(force: true)
        try loop.pump { graph.jobs.jobs.isEmpty }
    }

    /// iotest 194's source side: migration inactivates the images while the mirror is READY (the
    /// target's backend may go inactive, force_allow_inactivate), then a plain cancel ends it.
    @Test func imagesGoInactiveUnderAReadyMirrorAndAPlainCancelStillEndsIt() throws {
        _ = try nullNode("src")
        _ = try nullNode("tgt")
        let backend = try device(on: try #require(graph.node(named: "src")))
        let job = try graph.startMirror(device: "src", target: "tgt", options: MirrorOptions(jobID: "job0", sync: .full), loop: loop)
        try loop.pump { job.isReady }
        var inactivated: Result<Void, BlockError>?
        graph.inactivateAll { inactivated = $0 }
        try loop.pump { inactivated != nil }
        #expect(throws: Never.self) { try inactivated?.get() }
        try job.userCancel(force: false)
        try loop.pump { graph.jobs.jobs.isEmpty }
        #expect(events.entries.suffix(3) == ["COMPLETED", "concluded", "null"])
        #expect(backend.node?.nodeName == "src")
        try graph.activateAll()
    }
}
