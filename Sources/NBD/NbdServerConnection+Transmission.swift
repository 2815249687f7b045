import Block
import Glibc

/// Transmission phase: receiving and checking requests (QEMU's nbd_co_receive_request).
extension NbdServerConnection {
    func readRequestHeader() -> ReadProgress {
        let progress = channel.need(NbdRequestHeader.size)
        guard case .ready = progress else { return progress }
        let bytes = channel.input.take(NbdRequestHeader.size)
        guard let header = NbdRequestHeader(bytes) else {
            var reader = WireReader(bytes)
            return .closed("invalid magic (got 0x\(String(reader.u32()!, radix: 16)))")
        }
        return received(header)
    }

    private func received(_ header: NbdRequestHeader) -> ReadProgress {
        switch header.type {
        case NbdCommand.disconnect:
            phase = .disconnecting
            resumeIfPossible()
            return .ready
        case NbdCommand.write:
            return receiveWrite(header)
        default:
            if let error = lengthError(header) ?? validationError(header) {
                replyError(header, errno: EINVAL, message: error)
                return .ready
            }
            execute(ServerRequest(header, bufferSize: header.type == NbdCommand.read ? Int(header.length) : 0, pool: pool))
            return .ready
        }
    }

    private func receiveWrite(_ header: NbdRequestHeader) -> ReadProgress {
        if let error = lengthError(header) {
            // The data cannot be skipped safely: answer, then drop the client as QEMU does.
            replyError(header, errno: EINVAL, message: error)
            return .closed("Request handling failed in intermediate state")
        }
        let request = ServerRequest(header, bufferSize: Int(header.length), pool: pool)
        pendingWrite = (request, IncomingPayload(request.vector))
        phase = .writePayload
        return .ready
    }

    func readWritePayload() -> ReadProgress {
        guard let (request, initial) = pendingWrite else { return .closed("internal error") }
        var payload = initial
        let progress = channel.receive(into: &payload)
        pendingWrite = (request, payload)
        guard case .ready = progress else { return progress }
        pendingWrite = nil
        phase = .requestHeader
        if let error = validationError(request.header) {
            replyError(request.header, errno: EINVAL, message: error)
        } else {
            execute(request)
        }
        return .ready
    }

    /// READ, WRITE and CACHE are limited to 32 MiB.
    private func lengthError(_ header: NbdRequestHeader) -> String? {
        let limited = [NbdCommand.read, NbdCommand.write, NbdCommand.cache].contains(header.type)
        guard limited, header.length > NbdProtocol.maxBufferSize else { return nil }
        return "len (\(header.length) ) is larger than max len (\(NbdProtocol.maxBufferSize))"
    }

    /// The checks after the payload is in, in QEMU's order.
    private func validationError(_ header: NbdRequestHeader) -> String? {
        guard let export else { return "no export" }
        let writes = [NbdCommand.write, NbdCommand.trim, NbdCommand.writeZeroes].contains(header.type)
        if writes && export.transmissionFlags.contains(.readOnly) { return "Export is read-only" }
        if header.offset > export.size || UInt64(header.length) > export.size - header.offset {
            return "operation past EOF; From: \(header.offset), Len: \(header.length), Size: \(export.size)"
        }
        let invalid = header.flags.subtracting(validFlags(header.type))
        if !invalid.isEmpty {
            return "unsupported flags for command \(NbdCommand.name(header.type)) (got 0x\(String(header.flags.rawValue, radix: 16)))"
        }
        return nil
    }

    private func validFlags(_ type: UInt16) -> NbdCommandFlags {
        switch type {
        case NbdCommand.read: negotiation.structured ? [.fua, .dontFragment] : .fua
        case NbdCommand.writeZeroes: [.fua, .noHole, .fastZero]
        case NbdCommand.blockStatus: [.fua, .requestOne]
        default: .fua
        }
    }
}
