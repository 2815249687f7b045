import Block
import Glibc

/// Parsing the server's replies: simple replies and structured chunks, matched by handle.
extension NbdClientDriver {
    func receive() {
        while !channel.isClosed {
            let progress: ReadProgress
            switch state {
            case .replyHeader: progress = readReplyHeader()
            case .chunk(let handle, let flags, let type, let length): progress = readChunk(handle, flags, type, length)
            case .data(let handle, let done): progress = readData(handle, done: done)
            case .skip(let handle, let done, let remaining): progress = skip(handle, done: done, remaining: remaining)
            }
            switch progress {
            case .ready: continue
            case .waiting: return
            case .closed(let reason): return channel.close(reason: reason)
            }
        }
    }

    private func readReplyHeader() -> ReadProgress {
        let progress = channel.need(4)
        guard case .ready = progress else { return progress }
        var magicReader = WireReader(channel.input.peek(4))
        switch magicReader.u32()! {
        case NbdProtocol.simpleReplyMagic: return readSimpleReply()
        case NbdProtocol.structuredReplyMagic: return readChunkHeader()
        case let magic: return .closed("invalid magic (got 0x\(String(magic, radix: 16)))")
        }
    }

    private func readSimpleReply() -> ReadProgress {
        let progress = channel.need(16)
        guard case .ready = progress else { return progress }
        var reader = WireReader(channel.input.take(16))
        _ = reader.u32()
        let error = reader.u32()!, handle = reader.u64()!
        guard let request = pending[handle] else { return .closed("unexpected handle \(handle) in reply") }
        if error != 0 {
            request.error = Self.error(wire: error, message: "")
        } else if request.isRead {
            incoming = IncomingPayload(request.vector)
            state = .data(handle: handle, done: true)
            return .ready
        }
        finish(handle)
        return .ready
    }

    private func readChunkHeader() -> ReadProgress {
        let progress = channel.need(20)
        guard case .ready = progress else { return progress }
        var reader = WireReader(channel.input.take(20))
        _ = reader.u32()
        let flags = reader.u16()!, type = reader.u16()!, handle = reader.u64()!, length = Int(reader.u32()!)
        guard pending[handle] != nil else { return .closed("unexpected handle \(handle) in reply") }
        state = .chunk(handle: handle, flags: flags, type: type, length: length)
        return .ready
    }

    private func readChunk(_ handle: UInt64, _ flags: UInt16, _ type: UInt16, _ length: Int) -> ReadProgress {
        let done = flags & NbdProtocol.replyFlagDone != 0
        guard let request = pending[handle] else { return .closed("unexpected handle \(handle) in reply") }
        switch type {
        case NbdReplyChunk.none:
            guard length == 0 else { return .closed("Protocol error: NBD_REPLY_TYPE_NONE chunk with nonzero length") }
            return endChunk(handle, done: done)
        case NbdReplyChunk.offsetData:
            return readDataHeader(request, done: done, length: length)
        case NbdReplyChunk.offsetHole, NbdReplyChunk.error, NbdReplyChunk.errorOffset:
            guard length <= channel.input.capacity else { return .closed("Protocol error: chunk too long") }
            let progress = channel.need(length)
            guard case .ready = progress else { return progress }
            return readSmallChunk(request, type: type, payload: channel.input.take(length), done: done)
        default:
            state = .skip(handle: handle, done: done, remaining: length)
            return .ready
        }
    }

    private func readDataHeader(_ request: ClientRequest, done: Bool, length: Int) -> ReadProgress {
        guard request.isRead, length > 8 else {
            return protocolError(request, "Protocol error: invalid payload for NBD_REPLY_TYPE_OFFSET_DATA")
        }
        let progress = channel.need(8)
        guard case .ready = progress else { return progress }
        var reader = WireReader(channel.input.take(8))
        guard let start = range(request, offset: reader.u64()!, count: length - 8) else {
            return protocolError(request, "Protocol error: server sent chunk exceeding requested region")
        }
        incoming = IncomingPayload(request.vector.slice(offset: start, length: length - 8))
        state = .data(handle: request.header.handle, done: done)
        return .ready
    }

    /// OFFSET_HOLE zeroes part of the read; ERROR chunks record the failure.
    private func readSmallChunk(_ request: ClientRequest, type: UInt16, payload: [UInt8], done: Bool) -> ReadProgress {
        var reader = WireReader(payload)
        if type == NbdReplyChunk.offsetHole {
            guard request.isRead, payload.count == 12, let offset = reader.u64(), let count = reader.u32() else {
                return protocolError(request, "Protocol error: invalid payload for NBD_REPLY_TYPE_OFFSET_HOLE")
            }
            guard let start = range(request, offset: offset, count: Int(count)) else {
                return protocolError(request, "Protocol error: server sent chunk exceeding requested region")
            }
            request.vector.slice(offset: start, length: Int(count)).zero(from: 0)
        } else {
            guard let code = reader.u32(), let messageLength = reader.u16(), let text = reader.take(Int(messageLength)) else {
                return .closed("Protocol error: invalid error chunk")
            }
            if request.error == nil { request.error = Self.error(wire: code, message: String(decoding: text, as: UTF8.self)) }
        }
        return endChunk(request.header.handle, done: done)
    }

    /// The index in the request's vector where [offset, offset+count) starts, if that is a
    /// non-empty part of the request. QEMU's check in nbd_parse_offset_hole_payload and
    /// nbd_co_receive_offset_data_payload, in unsigned arithmetic that cannot overflow
    /// (both values come from the wire).
    private func range(_ request: ClientRequest, offset: UInt64, count: Int) -> Int? {
        let origin = request.header.offset
        let size = UInt64(request.vector.totalLength)
        let count = UInt64(count)
        guard count > 0, offset >= origin, count <= size, offset - origin <= size - count else { return nil }
        return Int(offset - origin)
    }

    /// A reply that breaks the protocol fails its request with EINVAL, and the connection goes
    /// down (QEMU's nbd_channel_error for an error other than EIO: shutdown, NBD_CLIENT_QUIT);
    /// the other requests in flight then fail as on any lost connection.
    private func protocolError(_ request: ClientRequest, _ message: String) -> ReadProgress {
        pending.removeValue(forKey: request.header.handle)
        incoming = nil
        state = .replyHeader
        request.error = BlockError(message, errno: EINVAL)
        request.finish()
        return .closed(message)
    }

    private func readData(_ handle: UInt64, done: Bool) -> ReadProgress {
        guard var payload = incoming else { return .closed("internal error") }
        let progress = channel.receive(into: &payload)
        incoming = payload
        guard case .ready = progress else { return progress }
        incoming = nil
        return endChunk(handle, done: done)
    }

    private func skip(_ handle: UInt64, done: Bool, remaining: Int) -> ReadProgress {
        var left = remaining
        let progress = channel.skip(&left)
        state = .skip(handle: handle, done: done, remaining: left)
        guard case .ready = progress else { return progress }
        return endChunk(handle, done: done)
    }

    private func endChunk(_ handle: UInt64, done: Bool) -> ReadProgress {
        state = .replyHeader
        if done { finish(handle) }
        return .ready
    }

    private func finish(_ handle: UInt64) {
        state = .replyHeader
        pending.removeValue(forKey: handle)?.finish()
    }

    static func error(wire code: UInt32, message: String) -> BlockError {
        let errno = NbdErrno.fromWire(code)
        return BlockError(message.isEmpty ? String(cString: strerror(errno)) : message, errno: errno)
    }
}
