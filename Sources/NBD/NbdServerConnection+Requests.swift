import Block
import Glibc

/// Transmission phase: running checked requests on the export's backend and replying
/// (QEMU's nbd_handle_request).
extension NbdServerConnection {
    /// The most extents one BLOCK_STATUS reply carries (QEMU: 1 MiB of extents).
    static let maxExtents = (1 << 20) / 8

    func execute(_ request: ServerRequest) {
        let header = request.header
        switch header.type {
        case NbdCommand.cache:
            send(NbdReplyEncoder.simpleReply(handle: header.handle, error: 0))
        case NbdCommand.blockStatus:
            blockStatus(request)
        case NbdCommand.read, NbdCommand.write, NbdCommand.flush, NbdCommand.trim, NbdCommand.writeZeroes:
            start(request)
        default:
            replyError(header, errno: EINVAL, message: "invalid request type (\(header.type)) received")
        }
    }

    private func start(_ request: ServerRequest) {
        guard let export else { return }
        inFlight += 1
        export.requestStarted()
        let backend = export.backend
        let fua = request.flags.contains(.fua)
        switch request.header.type {
        case NbdCommand.read:
            if fua {
                backend.flush { [self] result in
                    if case .failure = result { return complete(request, result, "flush failed") }
                    read(request, backend)
                }
            } else {
                read(request, backend)
            }
        case NbdCommand.write:
            run(request, "writing to file failed", flushAfter: fua) { backend.write(at: request.offset, from: request.vector, completion: $0) }
        case NbdCommand.flush:
            run(request, "flush failed", flushAfter: false) { backend.flush(completion: $0) }
        case NbdCommand.trim:
            run(request, "discard failed", flushAfter: fua) { backend.discard(at: request.offset, length: request.length, completion: $0) }
        default:
            writeZeroes(request, backend, fua: fua)
        }
    }

    private func read(_ request: ServerRequest, _ backend: BlockBackend) {
        guard request.length > 0 else { return complete(request, .success(0), "") }
        backend.read(at: request.offset, into: request.vector) { [self] result in
            complete(request, result, "reading from file failed")
        }
    }

    private func writeZeroes(_ request: ServerRequest, _ backend: BlockBackend, fua: Bool) {
        if request.flags.contains(.fastZero) && !(probe?.zeroesFast ?? false) {
            return complete(request, .failure(BlockError("fast zeroing is not supported", errno: ENOTSUP)), "writing to file failed")
        }
        let mayUnmap = !request.flags.contains(.noHole)
        run(request, "writing to file failed", flushAfter: fua) {
            backend.writeZeroes(at: request.offset, length: request.length, mayUnmap: mayUnmap, completion: $0)
        }
    }

    /// Runs `operation` (skipped for an empty range, except flush), then a flush for FUA.
    private func run(_ request: ServerRequest, _ message: String, flushAfter: Bool,
                     _ operation: (@escaping IoCompletion) -> Void) {
        if request.length == 0 && request.header.type != NbdCommand.flush {
            return complete(request, .success(0), message)
        }
        operation { [self] result in
            guard flushAfter, case .success = result, let backend = export?.backend else {
                return complete(request, result, message)
            }
            backend.flush { [self] flushed in complete(request, flushed, message) }
        }
    }

    /// A backend request ended: reply (unless the client is gone) and let reading resume.
    private func complete(_ request: ServerRequest, _ result: Result<Int, BlockError>, _ message: String) {
        inFlight -= 1
        export?.requestFinished()
        guard !isClosed else { return }
        switch result {
        case .success: replySuccess(request)
        case .failure(let error): replyError(request.header, errno: error.errno, message: message)
        }
        resumeIfPossible()
    }

    // MARK: replies

    private func replySuccess(_ request: ServerRequest) {
        let header = request.header
        guard header.type == NbdCommand.read else {
            return send(NbdReplyEncoder.simpleReply(handle: header.handle, error: 0))
        }
        let data = request.releaseBuffer()
        let prefix: [UInt8]
        if !negotiation.structured {
            prefix = NbdReplyEncoder.simpleReply(handle: header.handle, error: 0)
        } else if let data {
            prefix = NbdReplyEncoder.offsetDataHeader(handle: header.handle, offset: header.offset, count: data.count)
        } else {
            prefix = NbdReplyEncoder.chunkHeader(handle: header.handle, type: NbdReplyChunk.none, flags: NbdProtocol.replyFlagDone, length: 0)
        }
        channel.send([.bytes(prefix)] + (data.map { [$0] } ?? []))
    }

    func replyError(_ header: NbdRequestHeader, errno code: Int32, message: String) {
        let wire = NbdErrno.toWire(code)
        if negotiation.structured {
            send(NbdReplyEncoder.errorChunk(handle: header.handle, error: wire, message: message))
        } else {
            send(NbdReplyEncoder.simpleReply(handle: header.handle, error: wire))
        }
    }

    private func send(_ bytes: [UInt8]) { channel.send(bytes) }

    /// NBD_CMD_BLOCK_STATUS (nbd_handle_request): one chunk for each negotiated context, in
    /// `base:allocation`, then bitmap order; the last one ends the reply.
    private func blockStatus(_ request: ServerRequest) {
        let header = request.header
        guard header.length > 0 else { return replyError(header, errno: EINVAL, message: "need non-zero length") }
        guard let export, let probe, let contexts = negotiation.blockStatusContexts(for: export) else {
            return replyError(header, errno: EINVAL, message: "CMD_BLOCK_STATUS not negotiated")
        }
        let limit = header.flags.contains(.requestOne) ? 1 : Self.maxExtents
        var remaining = contexts.count
        if contexts.baseAllocation {
            remaining -= 1
            let extents = probe.extents(offset: header.offset, length: header.length, limit: limit)
            send(NbdReplyEncoder.blockStatusChunk(handle: header.handle, contextID: NbdProtocol.baseAllocationContextID,
                                                  extents: extents, done: remaining == 0))
        }
        for (index, bitmap) in export.bitmaps.enumerated() where contexts.bitmaps[index] {
            remaining -= 1
            let extents = BitmapExtents(bitmap: bitmap).extents(offset: header.offset, length: header.length, limit: limit)
            send(NbdReplyEncoder.blockStatusChunk(handle: header.handle, contextID: NbdProtocol.dirtyBitmapContextID + UInt32(index),
                                                  extents: extents, done: remaining == 0))
        }
    }
}
