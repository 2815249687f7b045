/// Encodes server messages: option replies and transmission replies.
enum NbdReplyEncoder {
    static func optionReply(_ option: UInt32, type: UInt32, payload: [UInt8] = []) -> [UInt8] {
        var writer = WireWriter(capacity: 20 + payload.count)
        writer.u64(NbdProtocol.optionReplyMagic)
        writer.u32(option)
        writer.u32(type)
        writer.u32(UInt32(payload.count))
        writer.append(payload)
        return writer.bytes
    }

    static func optionError(_ option: UInt32, type: UInt32, message: String) -> [UInt8] {
        optionReply(option, type: type, payload: Array(message.utf8))
    }

    static func info(_ option: UInt32, type: UInt16, body: [UInt8]) -> [UInt8] {
        var writer = WireWriter()
        writer.u16(type)
        writer.append(body)
        return optionReply(option, type: NbdOptionReply.info, payload: writer.bytes)
    }

    static func simpleReply(handle: UInt64, error: UInt32) -> [UInt8] {
        var writer = WireWriter(capacity: 16)
        writer.u32(NbdProtocol.simpleReplyMagic)
        writer.u32(error)
        writer.u64(handle)
        return writer.bytes
    }

    /// A structured chunk header; `length` counts the payload that follows.
    static func chunkHeader(handle: UInt64, type: UInt16, flags: UInt16, length: Int) -> [UInt8] {
        var writer = WireWriter(capacity: 20)
        writer.u32(NbdProtocol.structuredReplyMagic)
        writer.u16(flags)
        writer.u16(type)
        writer.u64(handle)
        writer.u32(UInt32(length))
        return writer.bytes
    }

    /// OFFSET_DATA header and offset; `count` data bytes follow.
    static func offsetDataHeader(handle: UInt64, offset: UInt64, count: Int) -> [UInt8] {
        var writer = WireWriter(capacity: 28)
        writer.append(chunkHeader(handle: handle, type: NbdReplyChunk.offsetData, flags: NbdProtocol.replyFlagDone, length: 8 + count))
        writer.u64(offset)
        return writer.bytes
    }

    static func errorChunk(handle: UInt64, error: UInt32, message: String) -> [UInt8] {
        let text = Array(message.utf8.prefix(NbdProtocol.maxStringSize))
        var writer = WireWriter(capacity: 26 + text.count)
        writer.append(chunkHeader(handle: handle, type: NbdReplyChunk.error, flags: NbdProtocol.replyFlagDone, length: 6 + text.count))
        writer.u32(error)
        writer.u16(UInt16(text.count))
        writer.append(text)
        return writer.bytes
    }

    /// One NBD_REPLY_TYPE_BLOCK_STATUS chunk; `done` on the reply's last one.
    static func blockStatusChunk(handle: UInt64, contextID: UInt32, extents: [(length: UInt32, flags: UInt32)], done: Bool = true) -> [UInt8] {
        var writer = WireWriter(capacity: 24 + 8 * extents.count)
        writer.append(chunkHeader(handle: handle, type: NbdReplyChunk.blockStatus, flags: done ? NbdProtocol.replyFlagDone : 0,
                                  length: 4 + 8 * extents.count))
        writer.u32(contextID)
        for extent in extents {
            writer.u32(extent.length)
            writer.u32(extent.flags)
        }
        return writer.bytes
    }
}
