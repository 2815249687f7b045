import Foundation
import Testing
@testable import Block
@testable import NBD

/// `qemu:dirty-bitmap:NAME` (QEMU 7.2's nbd/server.c): which queries select it, the ids SET
/// gives, the extents BLOCK_STATUS sends, and the export's checks on the bitmap.
@Suite(.serialized) struct DirtyBitmapContextTests {
    /// The option replies of one meta-context option as (context id, name), the final ACK left out.
    func contexts(_ negotiation: inout NbdNegotiation, _ option: UInt32, _ queries: [String], _ export: NbdExport) -> [(UInt32, String)] {
        let step = negotiation.handle(option: option, data: RawPeer.metaData(export.name, queries: queries), exports: [export])
        var reader = WireReader(step.replies)
        var found: [(UInt32, String)] = []
        while reader.remaining > 0 {
            _ = reader.u64()
            _ = reader.u32()
            let type = reader.u32()!, length = Int(reader.u32()!)
            var payload = WireReader(reader.take(length)!)
            if type == NbdOptionReply.metaContext {
                found.append((payload.u32()!, String(decoding: payload.rest(), as: UTF8.self)))
            } else {
                #expect(type == NbdOptionReply.ack)
            }
        }
        return found
    }

    func exportWithBitmaps(_ names: [String]) throws -> NbdExport {
        let graph = BlockGraph()
        let node = BlockNode(nodeName: "n", driverName: "null-co", driver: NullDriver(size: 1 << 20), readOnly: false)
        try graph.add(node)
        let backend = BlockBackend(graph: graph, perm: [.consistentRead, .write], shared: .all)
        try backend.insert(node)
        let export = NbdExport(name: "exp", backend: backend, writable: true)
        export.bitmaps = names.map { BdrvDirtyBitmap(name: $0, granularity: 65536, length: 1 << 20, enabled: true) }
        return export
    }

    @Test func listAnswersEveryMatchWithIdZeroAndPrefixesSelectWholeNamespaces() throws {
        let export = try exportWithBitmaps(["a", "b"])
        var negotiation = NbdNegotiation()
        _ = negotiation.acceptClientFlags(3)
        let list = NbdOption.listMetaContext
        #expect(contexts(&negotiation, list, [], export).map(\.1) == ["base:allocation", "qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"])
        #expect(contexts(&negotiation, list, [], export).map(\.0) == [0, 0, 0])
        #expect(contexts(&negotiation, list, ["qemu:"], export).map(\.1) == ["qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"])
        #expect(contexts(&negotiation, list, ["qemu:dirty-bitmap:"], export).map(\.1) == ["qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"])
        #expect(contexts(&negotiation, list, ["qemu:dirty-bitmap:b", "qemu:dirty-bitmap:nosuch", "qemu:allocation-depth",
                                              "qemu:dirty-bitmap:B", "qemu:dirty-bitmap:a "], export).map(\.1) == ["qemu:dirty-bitmap:b"])
        #expect(contexts(&negotiation, list, ["base:"], export).map(\.1) == ["base:allocation"])
        // LIST changes nothing for transmission.
        #expect(negotiation.blockStatusContexts(for: export) == nil)
    }

    @Test func setSelectsOnlyWholeNamesWithQEMUsIdsInExportOrder() throws {
        let export = try exportWithBitmaps(["a", "b"])
        var negotiation = NbdNegotiation()
        _ = negotiation.acceptClientFlags(3)
        _ = negotiation.handle(option: NbdOption.structuredReply, data: [], exports: [export])
        let set = NbdOption.setMetaContext
        #expect(contexts(&negotiation, set, ["qemu:dirty-bitmap:", "qemu:", "base:"], export).isEmpty)
        #expect(negotiation.blockStatusContexts(for: export) == nil)
        let chosen = contexts(&negotiation, set, ["qemu:dirty-bitmap:b", "base:allocation"], export)
        #expect(chosen.map(\.1) == ["base:allocation", "qemu:dirty-bitmap:b"])
        #expect(chosen.map(\.0) == [0, 3])
        let selected = try #require(negotiation.blockStatusContexts(for: export))
        #expect(selected.baseAllocation && selected.bitmaps == [false, true] && selected.count == 2)
        // A later SET replaces the selection.
        #expect(contexts(&negotiation, set, ["qemu:dirty-bitmap:a"], export).map(\.0) == [2])
        #expect(negotiation.blockStatusContexts(for: export)?.baseAllocation == false)
    }

    @Test func bitmapExtentsStartAtTheRequestAndStopWhenTheListIsFull() {
        let bitmap = BdrvDirtyBitmap(name: "b", granularity: 65536, length: 1 << 20, enabled: true)
        bitmap.set(offset: 0, length: 1)
        bitmap.set(offset: 131072, length: 65536)
        let probe = BitmapExtents(bitmap: bitmap)
        func extents(_ offset: UInt64, _ length: UInt32, _ limit: Int) -> [[UInt32]] {
            probe.extents(offset: offset, length: length, limit: limit).map { [$0.length, $0.flags] }
        }
        #expect(extents(1000, 200_000, 100) == [[64536, 1], [65536, 0], [65536, 1], [4392, 0]])
        // Full: what does not fit is left out, not merged into what came before.
        #expect(extents(1000, 200_000, 2) == [[64536, 1], [65536, 0]])
        #expect(extents(1000, 200_000, 3) == [[64536, 1], [65536, 0], [65536, 1]])
        #expect(extents(1000, 200_000, 1) == [[64536, 1]])
        #expect(extents(65536, 65536, 1) == [[65536, 0]])
        #expect(extents(200_000, 848_576, 10) == [[848_576, 0]])
    }

    @Test func exportedBitmapIsCheckedBusyAndReadPerContext() throws {
        let fixture = try ExportFixture()
        defer { fixture.shutdown() }
        try fixture.addBitmap("b0")
        let writer = try RawPeer(unix: fixture.socketPath)
        try writer.negotiate(export: "exp")
        try writer.request(NbdCommand.write, handle: 1, offset: 70000, length: 4096, data: [UInt8](repeating: 1, count: 4096))
        try writer.request(NbdCommand.write, handle: 2, offset: 1 << 20, length: 512, data: [UInt8](repeating: 2, count: 512))
        for _ in 0..<2 { #expect(try writer.reply().error == 0) }

        func refusal(_ name: String, writable: Bool = false, _ bitmaps: [NbdExportBitmap]) -> String {
            do {
                try fixture.addExport(name: name, writable: writable, bitmaps: bitmaps)
                return "added"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal("ro", [.local("nosuch")]) == "Bitmap 'nosuch' is not found")
        #expect(refusal("ro", [.local("b0")]) == "Enabled bitmap 'b0' incompatible with readonly export")
        #expect(refusal("ro", [.external(node: "disk", name: "nosuch")]) == "Dirty bitmap 'nosuch' not found")
        #expect(try !fixture.bitmapIsBusy("b0"))
        try fixture.disableBitmap("b0")
        try fixture.addExport(name: "ro", writable: false, bitmaps: [.local("b0")])
        #expect(try fixture.bitmapIsBusy("b0"))
        let busy = "Bitmap 'b0' is currently in use by another operation and cannot be used"
        #expect(refusal("again", writable: true, [.local("b0")]) == busy)
        #expect(throws: BlockError(busy, errno: EBUSY)) { try fixture.removeBitmap("b0") }

        let reader = try RawPeer(unix: fixture.socketPath)
        try reader.negotiate(export: "ro", blockStatus: true, contexts: ["qemu:dirty-bitmap:b0", "base:allocation"])
        try reader.request(NbdCommand.blockStatus, handle: 3, offset: 0, length: UInt32(ExportFixture.size))
        let status = try reader.reply()
        #expect(status.statusChunks.map(\.contextID) == [0, 2])
        #expect(status.statusChunks.map(\.done) == [false, true])
        #expect(status.statusChunks[1].extents.map { [$0.length, $0.flags] } == [
            [65536, 0], [65536, 1], [(1 << 20) - 131072, 0], [65536, 1], [UInt32(ExportFixture.size - (1 << 20) - 65536), 0]])
        try reader.request(NbdCommand.blockStatus, handle: 4, offset: 65636, length: 1 << 20, flags: .requestOne)
        let one = try reader.reply()
        #expect(one.statusChunks.map(\.extents.count) == [1, 1])
        #expect(one.statusChunks[1].extents.map { [$0.length, $0.flags] } == [[65436, 1]])

        // Gone with its export (a hard removal: the reader is still connected), the bitmap is free.
        try fixture.removeExport("ro", mode: .hard)
        #expect(try !fixture.bitmapIsBusy("b0"))
        try fixture.removeBitmap("b0")
    }
}
