import Block
import Testing
@testable import QMP

/// x-svmm-query-backends: a guest device attached during an incoming migration shows its
/// recorded permissions as not applied, while x-debug-query-block-graph shows what its root
/// edge really holds; ids are the graph's.
@Suite struct BackendsQueryTests {
    let graph = BlockGraph()

    private func names(_ value: JSONValue?) -> [String] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap(\.stringValue)
    }

    /// d0 under a virtio-blk-like device (recorded during inmigrate) and a writable NBD export.
    private func destination() throws -> (device: BlockBackend, export: BlockBackend) {
        let node = BlockNode(nodeName: "d0", driverName: "null-co", driver: NullDriver(size: 1 << 20), readOnly: false)
        try graph.add(node)
        let device = BlockBackend(graph: graph, perm: [], shared: .all)
        try device.insert(node)
        device.attachDevice("vblk0", incomingMigration: true)
        try device.setPerm([.consistentRead, .write], shared: [.consistentRead, .writeUnchanged, .resize])
        let export = BlockBackend(graph: graph, perm: [.consistentRead, .write], shared: .all)
        try export.insert(node)
        return (device, export)
    }

    @Test func aDeferredDeviceShowsItsRecordedPermissionsAsNotApplied() throws {
        let (device, export) = try destination()
        let answer = QmpMonitor.backendsInfo(graph)
        guard case .array(let entries) = answer, entries.count == 2 else { Issue.record("\(answer.serialized)"); return }
        let vblk0 = entries[0]
        #expect(vblk0["id"] == .int(1) && vblk0["name"] == .string("vblk0") && vblk0["device"] == .string("vblk0"))
        #expect(vblk0["node-name"] == .string("d0"))
        #expect(names(vblk0["perm"]) == ["write", "consistent-read"])
        #expect(names(vblk0["shared-perm"]) == ["resize", "write-unchanged", "consistent-read"])
        #expect(vblk0["applied"] == .bool(false))
        let nbd = entries[1]
        #expect(nbd["name"] == .string("") && nbd["device"] == nil && nbd["applied"] == .bool(true))
        #expect(names(nbd["perm"]) == ["write", "consistent-read"])

        // The graph shows the device's edge as applied: nothing taken, everything shared.
        let blockGraph = BlockInfoBuilder.graph(graph)
        guard case .array(let edges)? = blockGraph["edges"],
              let edge = edges.first(where: { $0["parent"] == .int(1) }) else { Issue.record("no edge from id 1"); return }
        #expect(blockGraph["nodes"].map { value -> Bool in
            guard case .array(let nodes) = value else { return false }
            return nodes.contains { $0["id"] == .int(1) && $0["name"] == .string("vblk0") && $0["type"] == .string("block-backend") }
        } == true)
        #expect(names(edge["perm"]).isEmpty)
        #expect(names(edge["shared-perm"]) == ["resize", "write-unchanged", "write", "consistent-read"])
        _ = (device, export)
    }

    @Test func aResumeThatConflictsLeavesThemDeferredAndOneWithoutTheExportAppliesThem() throws {
        var (device, export): (BlockBackend, BlockBackend?) = try destination()
        #expect(throws: BlockError.self) { try device.resumeAfterMigration() }
        guard case .array(let still) = QmpMonitor.backendsInfo(graph) else { return }
        #expect(still[0]["applied"] == .bool(false))

        export?.removeNode()
        export = nil
        try device.resumeAfterMigration()
        guard case .array(let after) = QmpMonitor.backendsInfo(graph) else { return }
        #expect(after.count == 1)
        #expect(after[0]["applied"] == .bool(true))
        #expect(device.root?.perm == [.consistentRead, .write])
        #expect(device.root?.sharedPerm == [.consistentRead, .writeUnchanged, .resize])
    }
}
