import Foundation
import Testing
@testable import Block

/// Drained sections (bdrv_drained_begin/end): in-flight requests finish first, new ones wait and
/// then follow the edges as the change left them.
@Suite struct DrainTests {
    let fixture: Qcow2Fixture
    let graph: BlockGraph

    init() throws {
        fixture = try Qcow2Fixture()
        graph = fixture.graph
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("a.qcow2"), "4M")
        _ = try fixture.tool("qemu-img", "create", "-q", "-f", "qcow2", fixture.path("b.qcow2"), "4M")
    }

    /// A backend on a fresh qcow2 node, as a guest device holds one.
    func backend(on driver: Qcow2Driver) throws -> (BlockBackend, BlockNode) {
        let node = try #require(graph.nodes.first { $0.driver === driver })
        let backend = BlockBackend(graph: graph, perm: [.consistentRead, .write], shared: [.consistentRead, .writeUnchanged, .resize])
        try backend.insert(node)
        return (backend, node)
    }

    func write(_ backend: BlockBackend, _ byte: UInt8, at offset: Int64, done: @escaping (Result<Int, BlockError>) -> Void) {
        let buffer = Qcow2Fixture.buffer(Qcow2Fixture.pattern(byte, 4096))
        backend.write(at: offset, from: IoVector(buffer)) { result in
            buffer.deallocate()
            done(result)
        }
    }

    @Test func theSectionStartsOnlyWhenNothingIsInFlightAndHoldsNewRequestsBack() throws {
        let (backend, node) = try backend(on: try fixture.qcow2("a.qcow2"))
        var finished = 0
        for index in 0..<32 { write(backend, 0x11, at: Int64(index) * 65536) { _ in finished += 1 } }
        #expect(node.requestsInFlight > 0)
        var inFlightAtStart: [Int]?
        var end: (() -> Void)?
        graph.drain([node]) { endSection in
            inFlightAtStart = Self.section(node).map(\.requestsInFlight)
            end = endSection
        }
        try fixture.wait { end != nil }
        #expect(finished == 32)
        #expect(inFlightAtStart?.allSatisfy { $0 == 0 } == true)
        // A request made inside the section waits for its end.
        var late: Result<Int, BlockError>?
        write(backend, 0x22, at: 0) { late = $0 }
        #expect(late == nil && node.requestsInFlight == 0)
        end?()
        try fixture.wait { late != nil }
        #expect(try late?.get() == 4096)
        #expect(!node.isQuiesced)
    }

    @Test func requestsHeldBackDuringASnapshotGoToTheOverlay() throws {
        let (backend, base) = try backend(on: try fixture.qcow2("a.qcow2"))
        let overlayDriver = try fixture.qcow2("b.qcow2")
        let overlay = try #require(graph.nodes.first { $0.driver === overlayDriver })
        var written = 0
        for index in 0..<16 { write(backend, 0x33, at: Int64(index) * 4096) { _ in written += 1 } }
        var outcome: Result<Void, BlockError>?
        graph.snapshot(node: base.nodeName, overlay: overlay.nodeName) { outcome = $0 }
        // Sent while the drain waits: held back, then written through the overlay.
        var late: Result<Int, BlockError>?
        write(backend, 0x44, at: 1 << 20) { late = $0 }
        try fixture.wait { outcome != nil && late != nil }
        try outcome?.get()
        #expect(written == 16 && backend.node === overlay)
        #expect(try fixture.read(overlay.driver, at: 1 << 20, count: 4) == [0x44, 0x44, 0x44, 0x44])
        #expect(try fixture.read(base.driver, at: 1 << 20, count: 4) == [0, 0, 0, 0])
        #expect(try fixture.read(overlay.driver, at: 0, count: 4) == [0x33, 0x33, 0x33, 0x33])
    }

    static func section(_ node: BlockNode) -> [BlockNode] { BlockGraph.drainedSection(of: [node]) }
}
