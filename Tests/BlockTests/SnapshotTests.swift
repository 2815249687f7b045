import Foundation
import Testing
@testable import Block

/// `blockdev-snapshot` with QEMU 5.0+'s relaxed check, on real qcow2 images.
@Suite struct SnapshotTests {
    let fixture: Qcow2Fixture
    let graph = BlockGraph()
    let opener: BlockNodeOpener
    final class Keeper { var backends: [BlockBackend] = [] }
    let keeper = Keeper()

    init() throws {
        fixture = try Qcow2Fixture()
        let aio = fixture.aio
        opener = BlockNodeOpener(graph: graph) { _ throws(BlockError) in aio }
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("base.qcow2"), "1M")
        _ = try fixture.tool("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", fixture.path("base.qcow2"))
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("target.qcow2"), "1M")
    }

    func open(_ name: String, file: String, backing: String? = nil, noBacking: Bool = true) throws -> BlockNode {
        var tree: [String: OptionValue] = [
            "driver": .string("qcow2"), "node-name": .string(name),
            "file": .object(["driver": .string("file"), "filename": .string(fixture.path(file))]),
        ]
        if let backing { tree["backing"] = .string(backing) } else if noBacking { tree["backing"] = .null }
        return try opener.open(try BlockdevOptions(tree, fromCommandLine: false))
    }

    /// Runs `blockdev-snapshot` (drain, flush, append) to its end.
    func snapshot(node: String, overlay: String) throws {
        var outcome: Result<Void, BlockError>?
        graph.snapshot(node: node, overlay: overlay) { outcome = $0 }
        try fixture.wait { outcome != nil }
        try outcome!.get()
    }

    func backend(on node: BlockNode, perm: BlockPermission, shared: BlockPermission, device: String? = nil) throws -> BlockBackend {
        let backend = BlockBackend(graph: graph, perm: perm, shared: shared)
        try backend.insert(node)
        if let device { backend.attachDevice(device, incomingMigration: false) }
        keeper.backends.append(backend)
        return backend
    }

    @Test func overlayInUseByAWriteOnlyParentIsAcceptedAndThenShowsTheBackingsData() throws {
        let base = try open("base", file: "base.qcow2")
        let target = try open("target", file: "target.qcow2")
        // A mirror target's backend: writes, reads nothing consistently.
        _ = try backend(on: target, perm: [.write, .resize], shared: [.writeUnchanged])
        #expect(try fixture.read(target.driver, at: 0, count: 4) == [0, 0, 0, 0])
        try snapshot(node: "base", overlay: "target")
        #expect(target.backing === base)
        #expect(try fixture.read(target.driver, at: 0, count: 4) == [0x5a, 0x5a, 0x5a, 0x5a])
        let edge = try #require(target.child(named: "backing"))
        #expect(edge.perm == [])
    }

    @Test func overlayAttachedToAGuestDeviceIsRefused() throws {
        _ = try open("base", file: "base.qcow2")
        let target = try open("target", file: "target.qcow2")
        _ = try backend(on: target, perm: [.consistentRead, .write], shared: [.consistentRead, .writeUnchanged, .resize], device: "vblk0")
        #expect(throws: BlockError("The overlay is already in use", errno: EBUSY)) {
            try snapshot(node: "base", overlay: "target")
        }
        #expect(target.backing == nil)
    }

    @Test func overlayWithABackingIsRefused() throws {
        _ = try open("base", file: "base.qcow2")
        _ = try open("other", file: "target.qcow2", backing: "base")
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("b2.qcow2"), "1M")
        _ = try open("b2", file: "b2.qcow2")
        #expect(throws: BlockError("The overlay already has a backing image", errno: EINVAL)) {
            try snapshot(node: "b2", overlay: "other")
        }
    }

    @Test func missingNodesGiveQEMUsNotFoundError() throws {
        _ = try open("base", file: "base.qcow2")
        #expect(throws: BlockError("Cannot find device='nosuch' nor node-name='nosuch'", errno: ENOENT)) {
            try snapshot(node: "base", overlay: "nosuch")
        }
        #expect(throws: BlockError("Cannot find device='nosuch' nor node-name='nosuch'", errno: ENOENT)) {
            try snapshot(node: "nosuch", overlay: "base")
        }
    }

    @Test func protocolNodeCannotTakeABacking() throws {
        _ = try open("base", file: "base.qcow2")
        try opener.open(try BlockdevOptions(["driver": .string("null-co"), "node-name": .string("null")], fromCommandLine: false))
        #expect(throws: BlockError("The overlay does not support backing images", errno: ENOTSUP)) {
            try snapshot(node: "base", overlay: "null")
        }
    }

    @Test func theBasesUsersMoveToTheOverlay() throws {
        let base = try open("base", file: "base.qcow2")
        let target = try open("target", file: "target.qcow2")
        let guest = try backend(on: base, perm: [.consistentRead, .write], shared: [.consistentRead, .writeUnchanged, .resize], device: "vblk0")
        try snapshot(node: "base", overlay: "target")
        #expect(guest.node === target)
        #expect(base.parents.count == 1)
        #expect(base.parents.first?.name == "backing")
        // The guest now writes the overlay; the base is only read.
        try fixture.write(target.driver, [1, 2, 3, 4], at: 0)
        #expect(try fixture.read(base.driver, at: 0, count: 4) == [0x5a, 0x5a, 0x5a, 0x5a])
    }
}
