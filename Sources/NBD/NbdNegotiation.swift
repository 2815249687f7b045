/// The server side of the option phase (QEMU's nbd_negotiate_options), as a pure state machine:
/// the connection feeds it whole options and sends what it answers.
struct NbdNegotiation {
    private(set) var fixedNewstyle = false
    private(set) var noZeroes = false
    private(set) var structured = false
    /// What the last SET_META_CONTEXT selected, and on which export.
    private(set) var metaExport: NbdExport?
    private(set) var metaContexts = NbdMetaContexts(bitmapCount: 0)

    /// Checks the client's flags word; the error QEMU logs when it refuses them.
    mutating func acceptClientFlags(_ flags: UInt32) -> String? {
        var rest = flags
        if rest & NbdProtocol.clientFlagFixedNewstyle != 0 {
            fixedNewstyle = true
            rest &= ~NbdProtocol.clientFlagFixedNewstyle
        }
        if rest & NbdProtocol.clientFlagNoZeroes != 0 {
            noZeroes = true
            rest &= ~NbdProtocol.clientFlagNoZeroes
        }
        return rest == 0 ? nil : "Unknown client flags 0x\(String(rest, radix: 16)) received"
    }

    /// The contexts BLOCK_STATUS answers for on `export`; nil if none was negotiated for it.
    func blockStatusContexts(for export: NbdExport) -> NbdMetaContexts? {
        metaExport === export && metaContexts.count > 0 ? metaContexts : nil
    }

    /// Flags this client sees for `export`.
    func flags(for export: NbdExport) -> NbdTransmissionFlags {
        structured ? export.transmissionFlags.union(.sendDF) : export.transmissionFlags
    }

    /// Answers one option whose payload was received whole.
    mutating func handle(option: UInt32, data: [UInt8], exports: [NbdExport]) -> NegotiationStep {
        guard fixedNewstyle else {
            if option == NbdOption.exportName { return exportName(data, exports: exports) }
            return .close("Unsupported option \(option) (\(NbdOption.name(option)))")
        }
        do {
            return try handleFixed(option: option, data: data, exports: exports)
        } catch {
            return NegotiationStep(replies: NbdReplyEncoder.optionError(option, type: NbdOptionReply.errInvalid, message: error.message))
        }
    }

    /// Answers an option whose payload is too big to buffer (it is skipped).
    func oversized(option: UInt32) -> NegotiationStep {
        if option == NbdOption.exportName { return .close("Bad length received") }
        guard fixedNewstyle else { return .close("Unsupported option \(option) (\(NbdOption.name(option)))") }
        if NbdOption.name(option) == "<unknown>" || option == NbdOption.peekExport { return unsupported(option) }
        return NegotiationStep(replies: NbdReplyEncoder.optionError(option, type: NbdOptionReply.errInvalid,
                                                                    message: Self.unexpectedLength(option)))
    }

    private mutating func handleFixed(option: UInt32, data: [UInt8], exports: [NbdExport]) throws(OptionDataError) -> NegotiationStep {
        switch option {
        case NbdOption.list: return try list(data, exports: exports)
        case NbdOption.abort: return NegotiationStep(replies: ack(option), outcome: .abort)
        case NbdOption.exportName: return exportName(data, exports: exports)
        case NbdOption.info, NbdOption.go: return try info(option, data, exports: exports)
        case NbdOption.startTLS:
            guard data.isEmpty else { throw OptionDataError(message: Self.unexpectedLength(option)) }
            return error(option, NbdOptionReply.errPolicy, "TLS not configured")
        case NbdOption.structuredReply: return try structuredReply(data)
        case NbdOption.listMetaContext, NbdOption.setMetaContext: return try metaContext(option, data, exports: exports)
        default: return unsupported(option)
        }
    }

    // MARK: options

    private func list(_ data: [UInt8], exports: [NbdExport]) throws(OptionDataError) -> NegotiationStep {
        guard data.isEmpty else { throw OptionDataError(message: Self.unexpectedLength(NbdOption.list)) }
        var replies: [UInt8] = []
        for export in exports {
            var writer = WireWriter()
            writer.u32(UInt32(export.name.utf8.count))
            writer.append(export.name)
            writer.append(export.description ?? "")
            replies += NbdReplyEncoder.optionReply(NbdOption.list, type: NbdOptionReply.server, payload: writer.bytes)
        }
        return NegotiationStep(replies: replies + ack(NbdOption.list))
    }

    private func exportName(_ data: [UInt8], exports: [NbdExport]) -> NegotiationStep {
        guard data.count <= NbdProtocol.maxStringSize else { return .close("Bad length received") }
        let name = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
        guard let export = exports.first(where: { $0.name == name }) else { return .close("export not found") }
        var writer = WireWriter(capacity: 134)
        writer.u64(export.size)
        writer.u16(flags(for: export).rawValue)
        if !noZeroes { writer.zeroes(NbdProtocol.exportNameZeroes) }
        return NegotiationStep(replies: writer.bytes, outcome: .transmission(export))
    }

    private func info(_ option: UInt32, _ data: [UInt8], exports: [NbdExport]) throws(OptionDataError) -> NegotiationStep {
        var reader = WireReader(data)
        let name = try Self.readName(&reader, option: option)
        guard let count = reader.u16() else { throw Self.inconsistent(option) }
        var sendName = false
        for _ in 0..<count {
            guard let request = reader.u16() else { throw Self.inconsistent(option) }
            if request == NbdOptionReply.infoName { sendName = true }
        }
        guard reader.remaining == 0 else { throw OptionDataError(message: Self.unexpectedLength(option)) }
        guard let export = exports.first(where: { $0.name == name }) else {
            return error(option, NbdOptionReply.errUnknown, "export '\(Self.sanitized(name))' not present")
        }
        let replies = infoReplies(option, export: export, name: sendName ? name : nil) + ack(option)
        return NegotiationStep(replies: replies, outcome: option == NbdOption.go ? .transmission(export) : .next)
    }

    /// NAME (if asked), DESCRIPTION (if set), BLOCK_SIZE, EXPORT, in QEMU's order.
    private func infoReplies(_ option: UInt32, export: NbdExport, name: String?) -> [UInt8] {
        var replies: [UInt8] = []
        if let name { replies += NbdReplyEncoder.info(option, type: NbdOptionReply.infoName, body: Array(name.utf8)) }
        if let description = export.description {
            replies += NbdReplyEncoder.info(option, type: NbdOptionReply.infoDescription, body: Array(description.utf8))
        }
        var sizes = WireWriter()
        sizes.u32(1)
        sizes.u32(4096)
        sizes.u32(UInt32(NbdProtocol.maxBufferSize))
        replies += NbdReplyEncoder.info(option, type: NbdOptionReply.infoBlockSize, body: sizes.bytes)
        var body = WireWriter()
        body.u64(export.size)
        body.u16(flags(for: export).rawValue)
        replies += NbdReplyEncoder.info(option, type: NbdOptionReply.infoExport, body: body.bytes)
        return replies
    }

    private mutating func structuredReply(_ data: [UInt8]) throws(OptionDataError) -> NegotiationStep {
        let option = NbdOption.structuredReply
        guard data.isEmpty else { throw OptionDataError(message: Self.unexpectedLength(option)) }
        guard !structured else { return error(option, NbdOptionReply.errInvalid, "structured reply already negotiated") }
        structured = true
        return NegotiationStep(replies: ack(option))
    }

    /// nbd_negotiate_meta_queries: LIST answers what the queries (or, with none, everything)
    /// match, with id 0; SET selects it for transmission, with the ids BLOCK_STATUS uses.
    private mutating func metaContext(_ option: UInt32, _ data: [UInt8], exports: [NbdExport]) throws(OptionDataError) -> NegotiationStep {
        let isSet = option == NbdOption.setMetaContext
        if isSet && !structured {
            throw OptionDataError(message: "request option '\(NbdOption.name(option))' when structured reply is not negotiated")
        }
        if isSet {
            metaExport = nil
            metaContexts = NbdMetaContexts(bitmapCount: 0)
        }
        var reader = WireReader(data)
        let name = try Self.readName(&reader, option: option)
        guard let export = exports.first(where: { $0.name == name }) else {
            return error(option, NbdOptionReply.errUnknown, "export '\(Self.sanitized(name))' not present")
        }
        guard let count = reader.u32() else { throw Self.inconsistent(option) }
        let names = export.bitmaps.map(\.name)
        var contexts = NbdMetaContexts(bitmapCount: names.count)
        if !isSet && count == 0 { contexts.selectAll() }
        for _ in 0..<count {
            if let query = try Self.readQuery(&reader, option: option) { contexts.select(query: query, names: names, isList: !isSet) }
        }
        guard reader.remaining == 0 else { throw OptionDataError(message: Self.unexpectedLength(option)) }
        var replies: [UInt8] = []
        if contexts.baseAllocation {
            replies += metaContextReply(option, id: NbdProtocol.baseAllocationContextID, name: NbdProtocol.baseAllocation)
        }
        for (index, bitmapName) in names.enumerated() where contexts.bitmaps[index] {
            replies += metaContextReply(option, id: NbdProtocol.dirtyBitmapContextID + UInt32(index),
                                        name: NbdProtocol.dirtyBitmapPrefix + bitmapName)
        }
        if isSet {
            metaExport = export
            metaContexts = contexts
        }
        return NegotiationStep(replies: replies + ack(option))
    }

    /// nbd_negotiate_send_meta_context: LIST sends every id as 0.
    private func metaContextReply(_ option: UInt32, id: UInt32, name: String) -> [UInt8] {
        var writer = WireWriter()
        writer.u32(option == NbdOption.setMetaContext ? id : 0)
        writer.append(name)
        return NbdReplyEncoder.optionReply(option, type: NbdOptionReply.metaContext, payload: writer.bytes)
    }

    /// Reads one query (nbd_negotiate_meta_query); nil for one too long to match anything.
    private static func readQuery(_ reader: inout WireReader, option: UInt32) throws(OptionDataError) -> [UInt8]? {
        guard let length = reader.u32() else { throw inconsistent(option) }
        guard let bytes = reader.take(Int(length)) else { throw inconsistent(option) }
        guard length <= NbdProtocol.maxStringSize else { return nil }
        guard !bytes.contains(0) else { throw OptionDataError(message: "Unexpected embedded NUL in option \(NbdOption.name(option))") }
        return bytes
    }

    // MARK: helpers

    private static func readName(_ reader: inout WireReader, option: UInt32) throws(OptionDataError) -> String {
        guard let length = reader.u32() else { throw inconsistent(option) }
        guard length <= NbdProtocol.maxStringSize else { throw OptionDataError(message: "Invalid name length: \(length)") }
        guard let bytes = reader.take(Int(length)) else { throw inconsistent(option) }
        guard !bytes.contains(0) else { throw OptionDataError(message: "Unexpected embedded NUL in option \(NbdOption.name(option))") }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func inconsistent(_ option: UInt32) -> OptionDataError {
        OptionDataError(message: "Inconsistent lengths in option \(NbdOption.name(option))")
    }

    static func unexpectedLength(_ option: UInt32) -> String {
        "option '\(NbdOption.name(option))' has unexpected length"
    }

    /// QEMU's nbd_sanitize_name: long names are cut to 80 bytes.
    private static func sanitized(_ name: String) -> String {
        let bytes = Array(name.utf8)
        return bytes.count < 80 ? name : String(decoding: bytes.prefix(80), as: UTF8.self) + "..."
    }

    private func ack(_ option: UInt32) -> [UInt8] {
        NbdReplyEncoder.optionReply(option, type: NbdOptionReply.ack)
    }

    private func error(_ option: UInt32, _ type: UInt32, _ message: String) -> NegotiationStep {
        NegotiationStep(replies: NbdReplyEncoder.optionError(option, type: type, message: message))
    }

    private func unsupported(_ option: UInt32) -> NegotiationStep {
        error(option, NbdOptionReply.errUnsupported, "Unsupported option \(option) (\(NbdOption.name(option)))")
    }
}
