import Block
import Glibc

/// One client of an NbdServer: the option phase, then transmission with several requests in
/// flight (replies go out as the backend completes them, possibly out of order).
final class NbdServerConnection {
    let channel: SocketChannel
    private(set) weak var server: NbdServer?
    var negotiation = NbdNegotiation()
    var phase: ServerPhase = .clientFlags
    /// The export chosen by GO/EXPORT_NAME.
    private(set) var export: NbdExport?
    var attachedExport: NbdExport? { export }
    var probe: AllocationProbe?
    /// A WRITE whose data is arriving.
    var pendingWrite: (request: ServerRequest, payload: IncomingPayload)?
    /// Requests issued on the backend and not replied yet.
    var inFlight = 0
    private var pumping = false
    /// The server's request buffers.
    let pool: BufferPool

    /// Replies beyond this many unsent bytes stop the reading of new requests.
    static let outputLimit = 64 << 20

    init(fd: Int32, server: NbdServer, watcher: FdWatcher) throws(BlockError) {
        do { channel = try SocketChannel(fd: fd, watcher: watcher, blockLayer: true) } catch { throw BlockError(error) }
        self.server = server
        pool = server.pool
        channel.onReadable = { [unowned self] in self.pump() }
        channel.onClosed = { [unowned self] reason in self.server?.connectionClosed(self, reason: reason) }
        channel.onDrained = { [unowned self] in self.resumeIfPossible() }
    }

    var isClosed: Bool { channel.isClosed }

    func close(reason: String) { channel.close(reason: reason) }

    /// Sends the greeting (after the server registered the connection: it may close at once).
    func start() {
        var writer = WireWriter(capacity: 18)
        writer.u64(NbdProtocol.initMagic)
        writer.u64(NbdProtocol.optionMagic)
        writer.u16(NbdProtocol.flagFixedNewstyle | NbdProtocol.flagNoZeroes)
        channel.send(writer.bytes)
    }

    // MARK: parsing

    /// Parses everything the socket has, as far as flow control allows.
    func pump() {
        guard !pumping else { return }
        pumping = true
        defer { pumping = false }
        while !channel.isClosed {
            guard let progress = step() else { return }
            switch progress {
            case .ready: continue
            case .waiting: return
            case .closed(let reason): return close(reason: reason)
            }
        }
    }

    /// One step of the current phase; nil when the connection must wait for its own requests.
    private func step() -> ReadProgress? {
        switch phase {
        case .clientFlags: return readClientFlags()
        case .optionHeader: return readOptionHeader()
        case .optionData(let option, let length): return readOptionData(option, length)
        case .optionSkip(let option, let remaining): return skipOption(option, remaining)
        case .requestHeader: return canTakeRequest ? readRequestHeader() : pause()
        case .writePayload: return readWritePayload()
        case .disconnecting: return pause()
        }
    }

    private var canTakeRequest: Bool {
        inFlight < NbdProtocol.maxRequestsPerClient && channel.pendingOutputBytes < Self.outputLimit
    }

    private func pause() -> ReadProgress? {
        channel.wantsInput = false
        return nil
    }

    /// A request finished or output drained: read again if we stopped.
    func resumeIfPossible() {
        if case .disconnecting = phase {
            // NBD_CMD_DISC: replies already queued still go out, then the socket closes.
            if inFlight == 0 && channel.pendingOutputBytes == 0 { close(reason: "") }
            return
        }
        guard !channel.isClosed, !channel.wantsInput, canTakeRequest else { return }
        channel.wantsInput = true
        pump()
    }

    // MARK: option phase

    private func readClientFlags() -> ReadProgress {
        let progress = channel.need(4)
        guard case .ready = progress else { return progress }
        var reader = WireReader(channel.input.take(4))
        if let error = negotiation.acceptClientFlags(reader.u32()!) {
            return .closed("option negotiation failed: \(error)")
        }
        phase = .optionHeader
        return .ready
    }

    private func readOptionHeader() -> ReadProgress {
        let progress = channel.need(16)
        guard case .ready = progress else { return progress }
        var reader = WireReader(channel.input.take(16))
        guard reader.u64() == NbdProtocol.optionMagic else { return .closed("option negotiation failed: Bad magic received") }
        let option = reader.u32()!, length = Int(reader.u32()!)
        if length > NbdProtocol.maxBufferSize {
            return .closed("option negotiation failed: len (\(length)) is larger than max len (\(NbdProtocol.maxBufferSize))")
        }
        phase = length <= channel.input.capacity ? .optionData(option: option, length: length) : .optionSkip(option: option, remaining: length)
        return .ready
    }

    private func readOptionData(_ option: UInt32, _ length: Int) -> ReadProgress {
        let progress = channel.need(length)
        guard case .ready = progress else { return progress }
        let data = channel.input.take(length)
        phase = .optionHeader
        return apply(negotiation.handle(option: option, data: data, exports: server?.activeExports ?? []))
    }

    private func skipOption(_ option: UInt32, _ remaining: Int) -> ReadProgress {
        var left = remaining
        let progress = channel.skip(&left)
        phase = .optionSkip(option: option, remaining: left)
        guard case .ready = progress else { return progress }
        phase = .optionHeader
        return apply(negotiation.oversized(option: option))
    }

    private func apply(_ step: NegotiationStep) -> ReadProgress {
        if !step.replies.isEmpty { channel.send(step.replies) }
        switch step.outcome {
        case .next: return .ready
        case .abort: return .closed("")
        case .close(let reason): return .closed("option negotiation failed: \(reason)")
        case .transmission(let export): return enterTransmission(export)
        }
    }

    private func enterTransmission(_ export: NbdExport) -> ReadProgress {
        self.export = export
        probe = AllocationProbe(backend: export.backend)
        phase = .requestHeader
        server?.clientAttached(self)
        return .ready
    }
}
