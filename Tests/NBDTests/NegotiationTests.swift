import Block
import Testing
@testable import NBD

/// The option phase as a pure state machine (QEMU 7.2's replies, byte for byte where it matters).
@Suite struct NegotiationTests {
    let graph = BlockGraph()
    let backend: BlockBackend
    let export: NbdExport

    init() throws {
        let node = BlockNode(nodeName: "n", driverName: "null-co", driver: NullDriver(size: 1000), readOnly: false)
        try graph.add(node)
        backend = BlockBackend(graph: graph, perm: [.consistentRead, .write], shared: .all)
        try backend.insert(node)
        export = NbdExport(name: "exp", backend: backend, writable: true, description: "d")
        export.transmissionFlags = export.computeFlags(multiConn: true)
    }

    /// Splits concatenated option replies into (type, payload).
    func replies(_ bytes: [UInt8]) -> [(UInt32, [UInt8])] {
        var reader = WireReader(bytes)
        var result: [(UInt32, [UInt8])] = []
        while reader.remaining > 0 {
            _ = reader.u64()
            _ = reader.u32()
            let type = reader.u32()!, length = Int(reader.u32()!)
            result.append((type, reader.take(length)!))
        }
        return result
    }

    @Test func sizeIsRoundedDownToSectorsAndFlagsAreQEMUs() {
        #expect(export.size == 512)
        #expect(export.transmissionFlags.rawValue == 0x0d6d)
        let readOnly = NbdExport(name: "r", backend: backend, writable: false)
        #expect(readOnly.computeFlags(multiConn: false).rawValue == 0x040f)
    }

    @Test func unknownClientFlagsAreRefused() {
        var negotiation = NbdNegotiation()
        #expect(negotiation.acceptClientFlags(0x13) == "Unknown client flags 0x10 received")
    }

    @Test func exportNameReplyHasNoHeaderAndPadsWithoutNoZeroes() {
        var negotiation = NbdNegotiation()
        #expect(negotiation.acceptClientFlags(1) == nil)
        let step = negotiation.handle(option: NbdOption.exportName, data: Array("exp".utf8), exports: [export])
        #expect(step.replies.count == 10 + 124)
        guard case .transmission = step.outcome else { Issue.record("no transmission"); return }
        let missing = negotiation.handle(option: NbdOption.exportName, data: Array("x".utf8), exports: [export])
        guard case .close("export not found") = missing.outcome else { Issue.record("\(missing.outcome)"); return }
    }

    @Test func oldStyleClientsMayOnlySendExportName() {
        var negotiation = NbdNegotiation()
        #expect(negotiation.acceptClientFlags(0) == nil)
        let step = negotiation.handle(option: NbdOption.list, data: [], exports: [export])
        guard case .close("Unsupported option 3 (list)") = step.outcome else { Issue.record("\(step.outcome)"); return }
    }

    @Test func listMetaContextNeedsNoStructuredRepliesButSetDoes() {
        var negotiation = NbdNegotiation()
        _ = negotiation.acceptClientFlags(3)
        let set = negotiation.handle(option: NbdOption.setMetaContext, data: RawPeer.metaData("exp", queries: ["base:allocation"]), exports: [export])
        #expect(replies(set.replies).map(\.0) == [NbdOptionReply.errInvalid])
        #expect(String(decoding: replies(set.replies)[0].1, as: UTF8.self) == "request option 'set meta context' when structured reply is not negotiated")
        let list = negotiation.handle(option: NbdOption.listMetaContext, data: RawPeer.metaData("exp", queries: []), exports: [export])
        #expect(replies(list.replies).map(\.0) == [NbdOptionReply.metaContext, NbdOptionReply.ack])
        #expect(replies(list.replies)[0].1 == [0, 0, 0, 0] + Array("base:allocation".utf8))
        _ = negotiation.handle(option: NbdOption.structuredReply, data: [], exports: [export])
        let other = negotiation.handle(option: NbdOption.setMetaContext, data: RawPeer.metaData("exp", queries: ["qemu:dirty-bitmap:x"]), exports: [export])
        #expect(replies(other.replies).map(\.0) == [NbdOptionReply.ack])
        #expect(negotiation.blockStatusContexts(for: export) == nil)
        _ = negotiation.handle(option: NbdOption.setMetaContext, data: RawPeer.metaData("exp", queries: ["base:allocation"]), exports: [export])
        #expect(negotiation.blockStatusContexts(for: export)?.baseAllocation == true)
    }

    @Test func malformedOptionsAreInvalidWithQEMUsMessages() {
        var negotiation = NbdNegotiation()
        _ = negotiation.acceptClientFlags(3)
        func message(_ option: UInt32, _ data: [UInt8]) -> String {
            let step = negotiation.handle(option: option, data: data, exports: [export])
            return String(decoding: replies(step.replies)[0].1, as: UTF8.self)
        }
        #expect(message(NbdOption.go, [0, 0]) == "Inconsistent lengths in option go")
        #expect(message(NbdOption.go, [0, 0, 0x20, 0]) == "Invalid name length: 8192")
        #expect(message(NbdOption.info, [0, 0, 0, 1, 0, 0, 0]) == "Unexpected embedded NUL in option info")
        #expect(message(NbdOption.go, RawPeer.goData("exp") + [1]) == "option 'go' has unexpected length")
        #expect(message(NbdOption.structuredReply, [1]) == "option 'structured reply' has unexpected length")
        #expect(message(NbdOption.startTLS, []) == "TLS not configured")
        #expect(message(NbdOption.peekExport, []) == "Unsupported option 4 (peek export)")
    }

    @Test func abortIsAcknowledged() {
        var negotiation = NbdNegotiation()
        _ = negotiation.acceptClientFlags(3)
        let step = negotiation.handle(option: NbdOption.abort, data: [], exports: [])
        #expect(replies(step.replies).map(\.0) == [NbdOptionReply.ack])
        guard case .abort = step.outcome else { Issue.record("\(step.outcome)"); return }
    }
}
