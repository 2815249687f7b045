import Foundation
import Testing
@testable import Block

/// QEMU-compatible OFD image locks between two opens of one file (OFD locks conflict between
/// open file descriptions even inside one process, exactly as between processes).
@Suite struct ImageLockingTests {
    let path: String
    let aio: AioContext
    let graph = BlockGraph()
    final class Keeper { var backends: [BlockBackend] = [] }
    let keeper = Keeper()

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID().uuidString).raw").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20))
        aio = try AioContext()
    }

    func openNode(_ name: String, locking: Bool = true) throws -> BlockNode {
        var options = FileOptions(filename: path)
        options.locking = locking
        let node = BlockNode(nodeName: name, driverName: "file", driver: try FileDriver(options: options, engine: aio), readOnly: false)
        try graph.add(node)
        return node
    }

    func user(_ node: BlockNode, perm: BlockPermission, shared: BlockPermission) throws {
        let backend = BlockBackend(graph: graph, perm: perm, shared: shared)
        try backend.insert(node)
        keeper.backends.append(backend)
    }

    static let guestShared: BlockPermission = [.consistentRead, .writeUnchanged, .resize]

    @Test func secondWriterIsRefusedWithQEMUsMessage() throws {
        try user(try openNode("a"), perm: [.consistentRead, .write], shared: Self.guestShared)
        #expect(throws: BlockError("Failed to get \"write\" lock\nIs another process using the image [\(path)]?", errno: EAGAIN)) {
            try user(try openNode("b"), perm: [.consistentRead, .write], shared: Self.guestShared)
        }
    }

    @Test func userThatRefusesToShareAnExistingWriterIsRefused() throws {
        try user(try openNode("a"), perm: [.consistentRead, .write], shared: .all)
        #expect(throws: BlockError("Failed to get shared \"write\" lock\nIs another process using the image [\(path)]?", errno: EAGAIN)) {
            try user(try openNode("b"), perm: [.consistentRead], shared: [.consistentRead])
        }
    }

    @Test func writersThatShareWriteCoexist() throws {
        let shared = Self.guestShared.union(.write)
        try user(try openNode("a"), perm: [.consistentRead, .write], shared: shared)
        try user(try openNode("b"), perm: [.consistentRead, .write], shared: shared)
    }

    @Test func locksGoAwayWithTheUser() throws {
        let a = try openNode("a")
        try user(a, perm: [.consistentRead, .write], shared: Self.guestShared)
        keeper.backends.removeAll()
        try user(try openNode("b"), perm: [.consistentRead, .write], shared: Self.guestShared)
    }

    @Test func lockingOffTakesNoLocks() throws {
        try user(try openNode("a", locking: false), perm: [.consistentRead, .write], shared: Self.guestShared)
        try user(try openNode("b"), perm: [.consistentRead, .write], shared: Self.guestShared)
    }
}

extension ImageLockingTests {
    /// Inactivates the graph; nothing is in flight, so the drain ends at once.
    func inactivateAll() throws {
        var outcome: Result<Void, BlockError>?
        graph.inactivateAll { outcome = $0 }
        let result = try #require(outcome, "inactivation with nothing in flight did not end at once")
        try result.get()
    }
}

/// Inactivation hands an image to another process and activation takes it back (migration).
@Suite struct ActivationTests {
    @Test func inactiveImagesDropTheirLocksAndActivationRetakesThem() throws {
        let locking = try ImageLockingTests()
        let a = try locking.openNode("a")
        let guest = BlockBackend(graph: locking.graph, perm: [], shared: .all)
        try guest.insert(a)
        guest.attachDevice("vblk0", incomingMigration: false)
        try guest.setPerm([.consistentRead, .write], shared: ImageLockingTests.guestShared)
        try locking.inactivateAll()
        #expect(a.inactive)
        #expect(guest.disablePerm)
        #expect(guest.root?.perm == [])
        // Another process (here: another open) may now write the image.
        let other = BlockGraph()
        var options = FileOptions(filename: locking.path)
        options.locking = true
        let b = BlockNode(nodeName: "b", driverName: "file", driver: try FileDriver(options: options, engine: locking.aio), readOnly: false)
        try other.add(b)
        let writer = BlockBackend(graph: other, perm: [.consistentRead, .write], shared: ImageLockingTests.guestShared)
        try writer.insert(b)
        // Taking the image back fails while the other writer holds it, and changes nothing.
        try locking.graph.activateAll()
        #expect(!a.inactive)
        #expect(throws: BlockError.self) { try guest.resumeAfterMigration() }
        #expect(guest.disablePerm)
        writer.removeNode()
        try guest.resumeAfterMigration()
        #expect(guest.root?.perm == [.consistentRead, .write])
    }

    @Test func writesToAnInactiveNodeAreRefused() throws {
        let locking = try ImageLockingTests()
        let a = try locking.openNode("a")
        try locking.inactivateAll()
        #expect(throws: BlockError("Block node is read-only", errno: EPERM)) {
            try locking.user(a, perm: [.consistentRead, .write], shared: .all)
        }
    }
}
