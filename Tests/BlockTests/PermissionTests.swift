import Testing
@testable import Block

/// QEMU 7.2's permission model, scenario by scenario, on null-co nodes (no KVM, no files).
@Suite struct PermissionTests {
    let graph = BlockGraph()
    /// Backends detach when released, as in QEMU: the tests keep theirs alive.
    final class Keeper { var backends: [BlockBackend] = [] }
    let keeper = Keeper()

    func node(_ name: String, readOnly: Bool = false) throws -> BlockNode {
        let node = BlockNode(nodeName: name, driverName: "null-co", driver: NullDriver(), readOnly: readOnly)
        try graph.add(node)
        return node
    }

    /// A guest device (virtio-blk) on `node`, as QEMU realizes it.
    func device(on node: BlockNode, id: String = "vblk0", shareRW: Bool = false, incoming: Bool = false) throws -> BlockBackend {
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        try backend.insert(node)
        try claimLikeVirtioBlk(backend, deviceName: id, shareRW: shareRW, incomingMigration: incoming)
        keeper.backends.append(backend)
        return backend
    }

    /// An NBD export's backend (QEMU's blk_exp_add: consistent read, write if writable, shares everything).
    func export(on node: BlockNode, writable: Bool) throws -> BlockBackend {
        let backend = BlockBackend(graph: graph, perm: writable ? [.consistentRead, .write] : [.consistentRead], shared: .all)
        try backend.insert(node)
        keeper.backends.append(backend)
        return backend
    }

    /// What Devices' VirtioBlk.claim does (the Block tests cannot import Devices).
    func claimLikeVirtioBlk(_ backend: BlockBackend, deviceName: String, shareRW: Bool, incomingMigration: Bool) throws {
        backend.attachDevice(deviceName, incomingMigration: incomingMigration)
        let perm: BlockPermission = backend.isReadOnly ? [.consistentRead] : [.consistentRead, .write]
        let shared: BlockPermission = shareRW ? [.consistentRead, .writeUnchanged, .resize, .write] : [.consistentRead, .writeUnchanged, .resize]
        try backend.setPerm(perm, shared: shared)
    }

    static let conflictOnD0 = "Permission conflict on node 'd0': permissions 'write' are both required by an unnamed block device (uses node 'd0' as 'root' child) and unshared by block device 'vblk0' (uses node 'd0' as 'root' child)."

    @Test func writableExportOfADevicesNodeConflictsInQEMUsWords() throws {
        let d0 = try node("d0")
        let guest = try device(on: d0)
        #expect(throws: BlockError(Self.conflictOnD0, errno: 1)) { try export(on: d0, writable: true) }
        #expect(d0.parents.count == 1)
        #expect(guest.root?.perm == [.consistentRead, .write])
    }

    @Test func deviceAfterAWritableExportConflictsToo() throws {
        let d0 = try node("d0")
        _ = try export(on: d0, writable: true)
        #expect(throws: BlockError(Self.conflictOnD0, errno: 1)) { try device(on: d0) }
    }

    @Test func readOnlyExportIsFine() throws {
        let d0 = try node("d0")
        _ = try device(on: d0)
        let reader = try export(on: d0, writable: false)
        #expect(reader.root?.perm == [.consistentRead])
    }

    @Test func sharedWriterIsFine() throws {
        let d0 = try node("d0")
        _ = try device(on: d0, shareRW: true)
        _ = try export(on: d0, writable: true)
        #expect(d0.cumulativePermissions.perm == [.consistentRead, .write])
    }

    @Test func twoDevicesBothWithShareRWCanWrite() throws {
        let d0 = try node("d0")
        _ = try device(on: d0, id: "a", shareRW: true)
        _ = try device(on: d0, id: "b", shareRW: true)
        #expect(d0.parents.count == 2)
    }

    @Test func writerOnAReadOnlyNodeIsRefused() throws {
        let d0 = try node("d0", readOnly: true)
        #expect(throws: BlockError("Block node is read-only", errno: 1)) { try export(on: d0, writable: true) }
        // A device on a read-only node asks only to read.
        let guest = try device(on: d0)
        #expect(guest.root?.perm == [.consistentRead])
    }

    /// top (format) --file--> top-file, --backing--> base
    func chain() throws -> (top: BlockNode, file: BlockNode, base: BlockNode) {
        let top = try node("top"), file = try node("top-file"), base = try node("base", readOnly: true)
        try graph.attachChild(file, to: top, name: "file", role: .image)
        try graph.attachChild(base, to: top, name: "backing", role: .cow)
        return (top, file, base)
    }

    @Test func formatNodeTakesWriteAndResizeOnItsFileAndSharesLittle() throws {
        let (top, file, _) = try chain()
        _ = try device(on: top)
        let edge = try #require(top.child(named: "file"))
        #expect(edge.perm == [.consistentRead, .write, .resize])
        #expect(edge.sharedPerm == [.consistentRead, .writeUnchanged])
        #expect(file.cumulativePermissions.perm == [.consistentRead, .write, .resize])
    }

    @Test func backingChildIsOnlyReadAndSharesWriteOnlyIfTheParentDoes() throws {
        let (top, _, base) = try chain()
        _ = try device(on: top)
        let backing = try #require(top.child(named: "backing"))
        #expect(backing.perm == [.consistentRead])
        #expect(backing.sharedPerm == [.consistentRead, .writeUnchanged])
        // Another user may read the backing file, but not write it.
        _ = try export(on: base, writable: false)
        let writableBase = try node("writable-base")
        try graph.attachChild(writableBase, to: try node("top2"), name: "backing", role: .cow)
        #expect(writableBase.parents.first?.perm == [])
    }

    @Test func aWriterOnTheBackingIsRefusedNamingTheOverlay() throws {
        let top = try node("top"), base = try node("base")
        try graph.attachChild(base, to: top, name: "backing", role: .cow)
        _ = try device(on: top)
        #expect(throws: BlockError("Permission conflict on node 'base': permissions 'write' are both required by an unnamed block device (uses node 'base' as 'root' child) and unshared by node 'top' (uses node 'base' as 'backing' child).", errno: 1)) {
            try export(on: base, writable: true)
        }
    }

    @Test func aFailedChangeLeavesEveryEdgeAsItWas() throws {
        let (top, file, base) = try chain()
        let guest = try device(on: top, shareRW: true)
        let writer = try export(on: file, writable: false)
        func snapshot() -> [String] {
            graph.nodes.flatMap { node in node.parents.map { "\(node.nodeName):\($0.name):\($0.perm):\($0.sharedPerm)" } }
        }
        let before = snapshot()
        // The reader on top-file would need the format node to share write: it does not.
        #expect(throws: BlockError.self) { try writer.setPerm([.consistentRead, .write], shared: .all) }
        #expect(snapshot() == before)
        #expect(writer.perm == [.consistentRead])
        // Tightening the device so that it no longer shares write fails the same way... not here:
        // nobody else writes top, so it succeeds and only the device's edge changes.
        try guest.setPerm([.consistentRead, .write], shared: [.consistentRead])
        #expect(base.parents.count == 1)
    }

    @Test func loosenedPermissionsAreAppliedEvenIfTheGraphIsAlreadyInConflict() throws {
        let d0 = try node("d0")
        let guest = try device(on: d0, incoming: true)
        _ = try export(on: d0, writable: true)
        // The device asks for less than it recorded: nothing is applied while disablePerm is set.
        try guest.setPerm([.consistentRead], shared: .all)
        #expect(guest.root?.perm == [])
    }

    @Test func cyclesAreRefused() throws {
        let a = try node("a"), b = try node("b")
        try graph.attachChild(b, to: a, name: "file", role: .image)
        #expect(throws: BlockError("Making 'a' a backing child of 'b' would create a cycle", errno: 22)) {
            try graph.attachChild(a, to: b, name: "backing", role: .cow)
        }
    }

    // MARK: incoming migration (DECISIONS.md §2)

    @Test func devicePermissionsAreRecordedNotAppliedDuringIncomingMigration() throws {
        let d0 = try node("d0")
        let guest = try device(on: d0, incoming: true)
        #expect(guest.disablePerm)
        #expect(guest.perm == [.consistentRead, .write])
        #expect(guest.root?.perm == [])
        #expect(guest.root?.sharedPerm == .all)
        // So the storage-migration export can write.
        let nbd = try export(on: d0, writable: true)
        #expect(nbd.root?.perm == [.consistentRead, .write])
    }

    @Test func resumeFailsWhileTheExportStillWritesThenSucceedsAfterItIsGone() throws {
        let d0 = try node("d0")
        let guest = try device(on: d0, incoming: true)
        var nbd: BlockBackend? = try export(on: d0, writable: true)
        #expect(throws: BlockError(Self.conflictOnD0, errno: 1)) { try guest.resumeAfterMigration() }
        #expect(guest.disablePerm)
        #expect(guest.root?.perm == [])
        nbd?.removeNode()
        keeper.backends.removeAll { $0 === nbd }
        nbd = nil
        try guest.resumeAfterMigration()
        #expect(!guest.disablePerm)
        #expect(guest.root?.perm == [.consistentRead, .write])
        #expect(guest.root?.sharedPerm == [.consistentRead, .writeUnchanged, .resize])
        // Now the device's restrictions are really in force.
        #expect(throws: BlockError(Self.conflictOnD0, errno: 1)) { try export(on: d0, writable: true) }
    }

    @Test func permissionNamesMatchQEMU() {
        #expect(BlockPermission.all.messageNames == "consistent read, write, write unchanged, resize")
        #expect(BlockPermission([.write, .consistentRead]).qapiNames == ["consistent-read", "write"])
    }
}
