import CKVM
import Glibc

/// The `file` protocol driver: a host file or block device, read and written through libaio.
public final class FileDriver: BlockDriver {
    public let options: FileOptions
    public let fd: Int32
    /// What query-blockstats shows as the file driver's own figures.
    public private(set) var discardStats = FileDiscardStats()
    public internal(set) var length: Int64
    private let engine: FileIoEngine
    /// O_DIRECT needs buffers, offsets and lengths on this boundary; others are bounced.
    private let alignment: Int
    /// The boundary blocking I/O rounds to (always a whole block, so it is valid with or without O_DIRECT).
    var syncAlignment: Int { max(alignment, 4096) }
    /// Requests in flight by range, so a read-modify-write and what overlaps it take turns.
    private let trackedRequests = TrackedRequests()

    public var isReadOnly: Bool { options.readOnly }

    public init(options: FileOptions, engine: FileIoEngine) throws(BlockError) {
        self.options = options
        self.engine = engine
        fd = try FileDriver.open(options)
        alignment = options.directIO ? 512 : 1
        let end = lseek(fd, 0, SEEK_END)
        if end < 0 {
            let error = BlockError.posix("Could not determine size of '\(options.filename)'", errno: errno)
            close(fd)
            throw error
        }
        // Sizes are whole sectors, as QEMU's file driver counts them (a 1000-byte file is 1024).
        length = (Int64(end) + 511) / 512 * 512
    }

    /// Bytes the file really occupies on the host (QEMU's actual-size).
    public var allocatedBytes: Int64 {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int64(info.st_blocks) * 512 : 0
    }

    deinit { close(fd) }

    private static func open(_ options: FileOptions) throws(BlockError) -> Int32 {
        if options.aio == .native && !options.directIO {
            throw BlockError("aio=native was specified, but it requires cache.direct=on, which was not specified.")
        }
        var flags = O_CLOEXEC | (options.readOnly ? O_RDONLY : O_RDWR)
        if options.directIO { flags |= CKVM_O_DIRECT }
        let fd = ckvm_open(options.filename, flags, 0)
        if fd >= 0 { return fd }
        let code = errno
        if code == EINVAL && options.directIO {
            throw BlockError("Could not open '\(options.filename)': the file system does not support O_DIRECT; use cache.direct=off (with aio=threads)", errno: code)
        }
        throw BlockError.posix("Could not open '\(options.filename)'", errno: code)
    }

    private var lock: ImageLock? { options.locking ? ImageLock(fd: fd, filename: options.filename) : nil }

    public func checkPermissions(_ perm: BlockPermission, shared: BlockPermission) throws(BlockError) {
        try lock?.check(perm: perm, shared: shared)
    }

    public func applyPermissions(_ perm: BlockPermission, shared: BlockPermission) {
        lock?.apply(perm: perm, shared: shared)
    }

    public func plug() { engine.plug() }
    public func unplug() { engine.unplug() }

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        let length = Int64(vector.totalLength)
        if isAligned(offset, vector.totalLength), let completion = startingNow(offset, length, completion) {
            return submit(.read, at: offset, vector, completion)
        }
        tracked(offset, length, serialising: false, completion: completion) { [self] completion in
            guard isAligned(offset, vector.totalLength) else { return paddedRead(at: offset, into: vector, completion: completion) }
            submit(.read, at: offset, vector, completion)
        }
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        guard !options.readOnly else { return completion(.failure(BlockError("Block node is read-only", errno: EPERM))) }
        let length = Int64(vector.totalLength)
        guard isAligned(offset, vector.totalLength) else {
            // The read-modify-write owns its whole padded range until its write lands (QEMU's
            // bdrv_make_request_serialising(req, align) in bdrv_co_pwritev_part).
            let (start, end) = paddedRange(offset, vector.totalLength)
            return tracked(start, end - start, serialising: true, completion: completion) { [self] completion in
                paddedWrite(at: offset, from: vector, completion: completion)
            }
        }
        if let completion = startingNow(offset, length, completion) {
            return submit(.write, at: offset, vector, completion)
        }
        tracked(offset, length, serialising: false, completion: completion) { [self] completion in
            submit(.write, at: offset, vector, completion)
        }
    }

    private func submit(_ operation: FileRequest.Operation, at offset: Int64, _ vector: IoVector, _ completion: @escaping IoCompletion) {
        engine.submit(.init(fd: fd, operation: operation, offset: offset, vector: vector, alignment: alignment, completion: completion))
    }

    private func isAligned(_ offset: Int64, _ length: Int) -> Bool {
        offset % Int64(alignment) == 0 && length % alignment == 0
    }

    /// The range on O_DIRECT's boundaries that covers `length` bytes at `offset`.
    private func paddedRange(_ offset: Int64, _ length: Int) -> (start: Int64, end: Int64) {
        let block = Int64(alignment)
        return (offset / block * block, (offset + Int64(length) + block - 1) / block * block)
    }

    /// The fast path of `tracked`, which makes no closure: the completion to start a
    /// non-serialising request over the range with now, or nil while a serialising request is
    /// active or waiting (then the request goes through `tracked`).
    private func startingNow(_ offset: Int64, _ length: Int64, _ completion: @escaping IoCompletion) -> IoCompletion? {
        guard alignment > 1, length > 0 else { return completion }
        return trackedRequests.beginWithoutWaiting(offset..<offset + length, completion: completion)
    }

    /// Runs `body` once the range may be touched (see `TrackedRequests`), with a completion that
    /// ends the tracked request before it reports. Without O_DIRECT nothing is padded, so nothing
    /// serialises and nothing needs tracking.
    private func tracked(_ offset: Int64, _ length: Int64, serialising: Bool, completion: @escaping IoCompletion,
                         _ body: @escaping (@escaping IoCompletion) -> Void) {
        guard alignment > 1, length > 0 else { return body(completion) }
        trackedRequests.begin(offset..<offset + length, serialising: serialising, completion: completion, start: body)
    }

    /// O_DIRECT cannot read part of a block (an NBD client may ask for 1 byte): read the covering
    /// blocks into an aligned buffer and hand over the middle, as QEMU's request padding does.
    private func paddedRead(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        let (start, end) = paddedRange(offset, vector.totalLength)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(end - start), alignment: 4096)
        engine.submit(.init(fd: fd, operation: .read, offset: start, vector: IoVector(buffer), alignment: alignment) { result in
            defer { buffer.deallocate() }
            if case .failure(let error) = result { return completion(.failure(error)) }
            let skip = Int(offset - start)
            vector.scatter(from: UnsafeRawBufferPointer(rebasing: buffer[skip..<skip + vector.totalLength]))
            completion(.success(vector.totalLength))
        })
    }

    /// Read-modify-write of the partial blocks at either end, then one aligned write (QEMU's
    /// bdrv_padding_rmw_read). Both halves go through the engine, so the loop never blocks; the
    /// caller holds the padded range serialised from the read until the write lands.
    private func paddedWrite(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        let (start, end) = paddedRange(offset, vector.totalLength)
        let aligned = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(end - start), alignment: 4096)
        engine.submit(.init(fd: fd, operation: .read, offset: start, vector: IoVector(aligned), alignment: alignment) { [self] result in
            if case .failure(let error) = result {
                aligned.deallocate()
                return completion(.failure(error))
            }
            let skip = Int(offset - start)
            vector.gather(into: UnsafeMutableRawBufferPointer(rebasing: aligned[skip..<skip + vector.totalLength]))
            engine.submit(.init(fd: fd, operation: .write, offset: start, vector: IoVector(aligned), alignment: alignment) { result in
                aligned.deallocate()
                completion(result.map { _ in vector.totalLength })
            })
        })
    }

    public func flush(completion: @escaping IoCompletion) {
        engine.submit(.init(fd: fd, operation: .fdsync, offset: 0, vector: IoVector(), alignment: alignment) { [fd] result in
            // Kernels without aio fsync answer EINVAL: fall back to a synchronous fdatasync.
            if case .failure(let error) = result, error.errno == EINVAL {
                completion(fdatasync(fd) == 0 ? .success(0) : .failure(.posix("flush", errno: errno)))
            } else {
                completion(result)
            }
        })
    }

    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        tracked(offset, length, serialising: false, completion: completion) { [self] completion in
            let result = fallocate(mode: FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset: offset, length: length, what: "discard")
            discardStats.account(result, bytes: length)
            completion(result)
        }
    }

    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        guard !options.readOnly else { return completion(.failure(BlockError("Block node is read-only", errno: EPERM))) }
        let mode = mayUnmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE
        tracked(offset, length, serialising: false, completion: { [self] result in
            // The fallback write is a tracked request of its own, started after this one ended.
            guard case .failure = result else { return completion(result) }
            writeZeroBuffer(at: offset, length: length, completion: completion)
        }) { [self] completion in
            completion(fallocate(mode: mode, offset: offset, length: length, what: "write zeroes"))
        }
    }

    private func fallocate(mode: Int32, offset: Int64, length: Int64, what: String) -> Result<Int, BlockError> {
        guard !options.readOnly else { return .failure(BlockError("Block node is read-only", errno: EPERM)) }
        if CKVM.fallocate(fd, mode, off_t(offset), off_t(length)) == 0 { return .success(0) }
        return .failure(.posix("\(what) at offset \(offset)", errno: errno))
    }

    /// The portable way to zero a range when the file system cannot: write a buffer of zeroes.
    private func writeZeroBuffer(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(length), alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        write(at: offset, from: IoVector(buffer)) { result in
            buffer.deallocate()
            completion(result)
        }
    }
}
