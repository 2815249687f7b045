import Block
import Glibc

/// The client side of the fixed newstyle handshake (QEMU's nbd_receive_negotiate), blocking:
/// STRUCTURED_REPLY, then GO with a BLOCK_SIZE request, or EXPORT_NAME for old servers.
struct NbdClientHandshake {
    private let socket: BlockingSocket
    private let exportName: String
    private var info = NbdExportInfo()
    private var noZeroes = false

    init(fd: Int32, exportName: String) {
        socket = BlockingSocket(fd: fd)
        self.exportName = exportName
    }

    static let oldStyleMagic: UInt64 = 0x0042_0281_8612_53

    mutating func run() throws(BlockError) -> NbdExportInfo {
        guard Array(exportName.utf8).count <= NbdProtocol.maxStringSize else {
            throw BlockError("export name too long to send to server", errno: EINVAL)
        }
        let fixed = try greeting()
        if fixed {
            try negotiateStructuredReplies()
            if try go() { return try checked(info) }
        }
        try exportNameOption()
        return try checked(info)
    }

    /// What the server announced must make sense before anything is computed from it: a size
    /// that fits a signed 64-bit length (QEMU's block layer counts in int64_t and refuses larger
    /// exports), and block sizes as nbd_opt_info_or_go checks them.
    private func checked(_ info: NbdExportInfo) throws(BlockError) -> NbdExportInfo {
        guard info.size <= UInt64(Int64.max) else {
            throw BlockError("Export size \(info.size) is too large (the limit is \(Int64.max))", errno: EINVAL)
        }
        let minimum = info.minimumBlock
        if minimum != 0 {
            guard minimum.nonzeroBitCount == 1 else {
                throw BlockError("server minimum block size \(minimum) is not a power of two", errno: EINVAL)
            }
            guard info.size % UInt64(minimum) == 0 else {
                throw BlockError("size \(info.size) is not multiple of minimum block size \(minimum)", errno: EINVAL)
            }
        }
        if info.preferredBlock != 0 && info.preferredBlock.nonzeroBitCount != 1 {
            throw BlockError("server preferred block size \(info.preferredBlock) is not a power of two", errno: EINVAL)
        }
        return info
    }

    /// Reads the server's greeting and sends our flags; true when the server is fixed newstyle.
    private mutating func greeting() throws(BlockError) -> Bool {
        let magic = try u64("initial magic")
        guard magic == NbdProtocol.initMagic else { throw BlockError("Bad initial magic received: 0x\(String(magic, radix: 16))", errno: EINVAL) }
        let second = try u64("server magic")
        if second == Self.oldStyleMagic { throw BlockError("Server uses the old-style protocol, which is not supported", errno: EINVAL) }
        guard second == NbdProtocol.optionMagic else { throw BlockError("Bad server magic received: 0x\(String(second, radix: 16))", errno: EINVAL) }
        var reader = WireReader(try socket.readExact(2, "server flags"))
        let serverFlags = reader.u16()!
        var clientFlags: UInt32 = 0
        let fixed = serverFlags & NbdProtocol.flagFixedNewstyle != 0
        if fixed { clientFlags |= NbdProtocol.clientFlagFixedNewstyle }
        if serverFlags & NbdProtocol.flagNoZeroes != 0 {
            noZeroes = true
            clientFlags |= NbdProtocol.clientFlagNoZeroes
        }
        var writer = WireWriter()
        writer.u32(clientFlags)
        try socket.writeAll(writer.bytes, "client flags")
        return fixed
    }

    private mutating func negotiateStructuredReplies() throws(BlockError) {
        try sendOption(NbdOption.structuredReply, [])
        let (type, _) = try readReply(NbdOption.structuredReply)
        if type == NbdOptionReply.ack {
            info.structured = true
        } else if !NbdOptionReply.isError(type) {
            throw BlockError("Unexpected reply type \(type) for option structured reply", errno: EINVAL)
        }
    }

    /// NBD_OPT_GO; false when the server does not know it (fall back to EXPORT_NAME).
    private mutating func go() throws(BlockError) -> Bool {
        var writer = WireWriter()
        writer.u32(UInt32(exportName.utf8.count))
        writer.append(exportName)
        writer.u16(1)
        writer.u16(NbdOptionReply.infoBlockSize)
        try sendOption(NbdOption.go, writer.bytes)
        while true {
            let (type, payload) = try readReply(NbdOption.go)
            switch type {
            case NbdOptionReply.ack: return true
            case NbdOptionReply.info: try parseInfo(payload)
            case NbdOptionReply.errUnsupported: return false
            default: throw Self.replyError(type, option: NbdOption.go, message: payload)
            }
        }
    }

    private mutating func parseInfo(_ payload: [UInt8]) throws(BlockError) {
        var reader = WireReader(payload)
        guard let type = reader.u16() else { throw BlockError("Invalid info reply received", errno: EINVAL) }
        switch type {
        case NbdOptionReply.infoExport:
            guard let size = reader.u64(), let flags = reader.u16() else { throw BlockError("Invalid info length for export", errno: EINVAL) }
            info.size = size
            info.flags = NbdTransmissionFlags(rawValue: flags)
        case NbdOptionReply.infoBlockSize:
            guard let minimum = reader.u32(), let preferred = reader.u32(), let maximum = reader.u32() else {
                throw BlockError("Invalid info length for block size", errno: EINVAL)
            }
            (info.minimumBlock, info.preferredBlock, info.maximumBlock) = (minimum, preferred, maximum)
        default:
            break
        }
    }

    private mutating func exportNameOption() throws(BlockError) {
        try sendOption(NbdOption.exportName, Array(exportName.utf8))
        var reader = WireReader(try socket.readExact(10, "export size and flags"))
        info.size = reader.u64()!
        info.flags = NbdTransmissionFlags(rawValue: reader.u16()!)
        if !noZeroes { _ = try socket.readExact(NbdProtocol.exportNameZeroes, "export padding") }
    }

    // MARK: wire

    private func u64(_ what: String) throws(BlockError) -> UInt64 {
        var reader = WireReader(try socket.readExact(8, what))
        return reader.u64()!
    }

    private func sendOption(_ option: UInt32, _ data: [UInt8]) throws(BlockError) {
        var writer = WireWriter(capacity: 16 + data.count)
        writer.u64(NbdProtocol.optionMagic)
        writer.u32(option)
        writer.u32(UInt32(data.count))
        writer.append(data)
        try socket.writeAll(writer.bytes, "option request")
    }

    /// One option reply: its type and payload.
    private func readReply(_ option: UInt32) throws(BlockError) -> (UInt32, [UInt8]) {
        var reader = WireReader(try socket.readExact(20, "option reply"))
        guard reader.u64() == NbdProtocol.optionReplyMagic else { throw BlockError("Unexpected option reply magic", errno: EINVAL) }
        guard reader.u32() == option else { throw BlockError("Unexpected option type in reply", errno: EINVAL) }
        let type = reader.u32()!, length = Int(reader.u32()!)
        guard length <= NbdProtocol.maxBufferSize else { throw BlockError("server's option reply is too long", errno: EINVAL) }
        return (type, try socket.readExact(length, "option reply payload"))
    }

    /// QEMU's nbd_handle_reply_err wording.
    static func replyError(_ type: UInt32, option: UInt32, message: [UInt8]) -> BlockError {
        let what = "option \(option) (\(NbdOption.name(option)))"
        let text: String = switch type {
        case NbdOptionReply.errPolicy: "Denied by server for \(what)"
        case NbdOptionReply.errInvalid: "Invalid parameters for \(what)"
        case NbdOptionReply.errPlatform: "Server lacks support for \(what)"
        case NbdOptionReply.errTLSRequired: "TLS negotiation required before \(what)"
        case NbdOptionReply.errUnknown: "Requested export not available"
        case NbdOptionReply.errShutdown: "Server shutting down before \(what)"
        case NbdOptionReply.errBlockSizeRequired: "Server requires INFO_BLOCK_SIZE for \(what)"
        default: "Unknown error code when asking for \(what)"
        }
        return BlockError(text, errno: EINVAL)
    }
}
