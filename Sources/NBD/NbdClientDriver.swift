import Block
import Glibc
import Synchronization

/// The `nbd` protocol driver (QEMU's block/nbd.c): a connection to an NBD server made and
/// negotiated at open time (blocking), then requests in flight on the event loop, matched to
/// replies by handle.
public final class NbdClientDriver: BlockDriver {
    public let options: NbdClientOptions
    public let info: NbdExportInfo
    let channel: SocketChannel
    let watcher: FdWatcher
    var pending: [UInt64: ClientRequest] = [:]
    var state: ClientReceiveState = .replyHeader
    var incoming: IncomingPayload?
    private var nextHandle: UInt64 = 1

    /// Connects to the server and negotiates the export; the connection then runs on `watcher`.
    /// The blocking handshake runs on a thread of its own while the loop keeps serving the block
    /// layer (`pollBlockLayer`), so an NBD server in this process can answer it and guest I/O
    /// completes meanwhile. (QMP's blockdev-add negotiates before it opens: `negotiate(_:)`.)
    public static func connect(_ options: NbdClientOptions, watcher: FdWatcher) throws(BlockError) -> NbdClientDriver {
        let outcome = Mutex<Result<NbdConnection, BlockError>?>(nil)
        do {
            try NativeThread.start(name: "svmm-nbd-connect") {
                let result = Result { () throws(BlockError) in try negotiate(options) }
                outcome.withLock { $0 = result }
            }
        } catch {
            throw BlockError(error)
        }
        while true {
            if let result = outcome.withLock({ $0 }) { return try adopt(try result.get(), watcher: watcher) }
            watcher.pollBlockLayer(timeoutMilliseconds: 5)
        }
    }

    /// Connects and runs the handshake, blocking the calling thread (any thread: nothing of the
    /// loop's is touched). `adopt` then runs the connection on the loop.
    public static func negotiate(_ options: NbdClientOptions) throws(BlockError) -> NbdConnection {
        let fd: Int32
        do { fd = try Socket.connect(options.server) } catch { throw BlockError(error) }
        do throws(BlockError) {
            var handshake = NbdClientHandshake(fd: fd, exportName: options.export)
            BlockingSocket(fd: fd).setReceiveTimeout(seconds: 30)
            let info = try handshake.run()
            BlockingSocket(fd: fd).setReceiveTimeout(seconds: 0)
            return NbdConnection(options: options, fd: fd, info: info)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// A negotiated connection becomes a driver whose requests run on `watcher`.
    public static func adopt(_ connection: NbdConnection, watcher: FdWatcher) throws(BlockError) -> NbdClientDriver {
        Socket.setNonBlocking(connection.fd)
        do throws(BlockError) {
            return try NbdClientDriver(options: connection.options, info: connection.info, fd: connection.fd, watcher: watcher)
        } catch {
            Glibc.close(connection.fd)
            throw error
        }
    }

    /// Over a negotiated connection (`adopt`, or the fuzz target over a socket pair).
    init(options: NbdClientOptions, info: NbdExportInfo, fd: Int32, watcher: FdWatcher) throws(BlockError) {
        self.options = options
        self.info = info
        self.watcher = watcher
        do { channel = try SocketChannel(fd: fd, watcher: watcher, blockLayer: true) } catch { throw BlockError(error) }
        channel.onReadable = { [weak self] in self?.receive() }
        channel.onClosed = { [weak self] reason in self?.failAll(reason) }
    }

    deinit { close() }

    public var length: Int64 { Int64(info.size) }
    public var isReadOnly: Bool { info.flags.contains(.readOnly) }
    public var isConnected: Bool { !channel.isClosed }
    public var requestsInFlight: Int { pending.count }

    /// Sends NBD_CMD_DISC and closes the socket; requests still in flight fail.
    public func close() {
        guard !channel.isClosed else { return }
        channel.send(NbdRequestHeader(type: NbdCommand.disconnect, handle: 0, offset: 0, length: 0).encoded)
        channel.close(reason: "Connection closed")
    }

    // MARK: BlockDriver

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        let pieces = Self.pieces(offset: offset, length: Int64(vector.totalLength), size: Int64(info.maxPayload))
        let split = SplitCompletion(pieces: pieces.count, completion: completion)
        for (start, count) in pieces {
            let slice = vector.slice(offset: Int(start - offset), length: Int(count))
            submit(.read, offset: start, length: count, vector: slice, completion: split.pieceDone)
        }
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        guard !isReadOnly else { return completion(.failure(BlockError("Block node is read-only", errno: EPERM))) }
        let pieces = Self.pieces(offset: offset, length: Int64(vector.totalLength), size: Int64(info.maxPayload))
        let split = SplitCompletion(pieces: pieces.count, completion: completion)
        for (start, count) in pieces {
            let slice = vector.slice(offset: Int(start - offset), length: Int(count))
            submit(.write, offset: start, length: count, vector: slice, completion: split.pieceDone)
        }
    }

    public func flush(completion: @escaping IoCompletion) {
        guard info.flags.contains(.sendFlush) else { return completion(.success(0)) }
        submit(.flush, offset: 0, length: 0, vector: IoVector(), completion: completion)
    }

    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        guard info.flags.contains(.sendTrim) else { return completion(.success(0)) }
        guard !isReadOnly else { return completion(.failure(BlockError("Block node is read-only", errno: EPERM))) }
        split(offset: offset, length: length, completion: completion) { start, count, done in
            self.submit(.trim, offset: start, length: count, vector: IoVector(), completion: done)
        }
    }

    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        guard !isReadOnly else { return completion(.failure(BlockError("Block node is read-only", errno: EPERM))) }
        guard info.flags.contains(.sendWriteZeroes) else { return writeZeroBuffer(at: offset, length: length, completion: completion) }
        let flags: NbdCommandFlags = mayUnmap ? [] : .noHole
        split(offset: offset, length: length, completion: completion) { start, count, done in
            self.submit(.writeZeroes, offset: start, length: count, flags: flags, vector: IoVector(), completion: done)
        }
    }

    // MARK: requests

    /// [offset, offset+length) cut into pieces of at most `size` bytes (one empty piece for 0).
    static func pieces(offset: Int64, length: Int64, size: Int64) -> [(Int64, Int64)] {
        guard length > 0 else { return [(offset, 0)] }
        return stride(from: offset, to: offset + length, by: Int(size)).map { ($0, min(size, offset + length - $0)) }
    }

    /// Trim and write-zeroes lengths are 32-bit: cut at 1 GiB.
    private func split(offset: Int64, length: Int64, completion: @escaping IoCompletion,
                       _ body: (Int64, Int64, @escaping IoCompletion) -> Void) {
        let pieces = Self.pieces(offset: offset, length: length, size: 1 << 30)
        let split = SplitCompletion(pieces: pieces.count, completion: completion)
        for (start, count) in pieces { body(start, count, split.pieceDone) }
    }

    /// Servers without WRITE_ZEROES get written zeroes, one buffer shared by every piece.
    private func writeZeroBuffer(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        let size = Int(min(length, Int64(info.maxPayload)))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let pieces = Self.pieces(offset: offset, length: length, size: Int64(max(size, 1)))
        let split = SplitCompletion(pieces: pieces.count) { result in
            buffer.deallocate()
            completion(result)
        }
        for (start, count) in pieces {
            let vector = IoVector(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(count)]))
            submit(.write, offset: start, length: count, vector: vector, completion: split.pieceDone)
        }
    }

    enum Kind { case read, write, flush, trim, writeZeroes }

    func submit(_ kind: Kind, offset: Int64, length: Int64, flags: NbdCommandFlags = [], vector: IoVector,
                completion: @escaping IoCompletion) {
        guard !channel.isClosed else { return completion(.failure(Self.connectionLost)) }
        let type: UInt16 = switch kind {
        case .read: NbdCommand.read
        case .write: NbdCommand.write
        case .flush: NbdCommand.flush
        case .trim: NbdCommand.trim
        case .writeZeroes: NbdCommand.writeZeroes
        }
        let header = NbdRequestHeader(flags: flags, type: type, handle: nextHandle, offset: UInt64(offset), length: UInt32(length))
        nextHandle += 1
        pending[header.handle] = ClientRequest(header: header, vector: vector, completion: completion)
        var segments: [OutputSegment] = [.bytes(header.encoded)]
        if kind == .write {
            segments += vector.segments.map { OutputSegment(base: UnsafeRawPointer($0.iov_base!), count: $0.iov_len, release: nil) }
        }
        channel.send(segments)
    }

    static let connectionLost = BlockError("Input/output error", errno: EIO)

    /// The connection is gone: every request in flight fails.
    func failAll(_ reason: String) {
        let requests = pending.values.sorted { $0.header.handle < $1.header.handle }
        pending.removeAll()
        incoming = nil
        for request in requests { request.completion(.failure(Self.connectionLost)) }
    }
}
