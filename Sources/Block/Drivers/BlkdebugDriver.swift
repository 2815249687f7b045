import Glibc

/// The `blkdebug` filter (QEMU's block/blkdebug.c without suspend/break): requests pass to its
/// `image` child unless an armed inject-error rule fails them; events its parents raise on it
/// (`BlkdebugEvent`) arm rules and change its state. Runs on the event-loop thread.
public final class BlkdebugDriver: BlockDriver, SyncBlockIO {
    public let image: BdrvChild
    public let rules: BlkdebugRules
    /// Errors that are not `immediately` come back on a later loop turn (rule_check's reschedule).
    private let runSoon: (@escaping () -> Void) -> Void
    /// QEMU's write_gen / flushed_gen for this node: bdrv_co_flush calls the driver's flush only
    /// when something was written since the last successful one, so only then can a flush fail.
    private var writeGeneration = 0
    private var flushedGeneration = 0

    public init(image: BdrvChild, rules: [BlkdebugRule], runSoon: @escaping (@escaping () -> Void) -> Void) {
        self.image = image
        self.rules = BlkdebugRules(rules)
        self.runSoon = runSoon
    }

    public var length: Int64 { image.length }
    public var isReadOnly: Bool { image.node.readOnly }
    public var isFilter: Bool { true }

    /// bdrv_debug_event on this node.
    public func handle(_ event: BlkdebugEvent) { rules.handle(event) }

    public func plug() { image.plug() }
    public func unplug() { image.unplug() }

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        if let failure = injected(offset, Int64(vector.totalLength), .read) { return fail(failure, completion) }
        image.read(at: offset, into: vector, completion: completion)
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        if let failure = injected(offset, Int64(vector.totalLength), .write) { return fail(failure, completion) }
        image.write(at: offset, from: vector, completion: written(completion))
    }

    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        if let failure = injected(offset, length, .discard) { return fail(failure, completion) }
        image.discard(at: offset, length: length, completion: written(completion))
    }

    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        if let failure = injected(offset, length, .writeZeroes) { return fail(failure, completion) }
        image.writeZeroes(at: offset, length: length, mayUnmap: mayUnmap, completion: written(completion))
    }

    /// blkdebug_co_flush, reached only when the node was written since its last good flush.
    public func flush(completion: @escaping IoCompletion) {
        let generation = writeGeneration
        if generation != flushedGeneration, let failure = injected(0, 0, .flush) { return fail(failure, completion) }
        image.flush { [self] result in
            if case .success = result { flushedGeneration = max(flushedGeneration, generation) }
            completion(result)
        }
    }

    // MARK: metadata I/O of a format above (the same rules: QEMU's metadata goes through preadv/pwritev too)

    public func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8] {
        if let failure = injected(offset, Int64(count), .read) { throw Self.error(failure.errno) }
        return try image.readSync(at: offset, count: count)
    }

    public func writeSync(_ bytes: [UInt8], at offset: Int64) throws(BlockError) {
        if let failure = injected(offset, Int64(bytes.count), .write) { throw Self.error(failure.errno) }
        defer { writeGeneration &+= 1 }
        try image.writeSync(bytes, at: offset)
    }

    public func flushSync() throws(BlockError) {
        let generation = writeGeneration
        if generation != flushedGeneration, let failure = injected(0, 0, .flush) { throw Self.error(failure.errno) }
        try image.flushSync()
        flushedGeneration = max(flushedGeneration, generation)
    }

    public func truncateSync(to length: Int64) throws(BlockError) {
        try image.truncateSync(to: length)
    }

    // MARK: rules

    private func injected(_ offset: Int64, _ bytes: Int64, _ type: BlkdebugIoType) -> (errno: Int32, immediately: Bool)? {
        guard let failure = rules.check(offset: offset, bytes: bytes, ioType: type), failure.errno > 0 else { return nil }
        return failure
    }

    private func fail(_ failure: (errno: Int32, immediately: Bool), _ completion: @escaping IoCompletion) {
        let error = Self.error(failure.errno)
        if failure.immediately { return completion(.failure(error)) }
        runSoon { completion(.failure(error)) }
    }

    /// The request fails with the rule's errno, as the guest or job sees it: strerror's text.
    static func error(_ code: Int32) -> BlockError {
        BlockError(String(cString: strerror(code)), errno: code)
    }

    /// bdrv_co_write_req_finish counts every finished write, failed or not.
    private func written(_ completion: @escaping IoCompletion) -> IoCompletion {
        { [self] result in
            writeGeneration &+= 1
            completion(result)
        }
    }
}
