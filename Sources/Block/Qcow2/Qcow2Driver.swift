import Glibc

/// The qcow2 format driver (QEMU's block/qcow2.c). Guest clusters map through the L1 and L2
/// tables to clusters of the `file` child; unallocated ones read through to the backing node.
/// Metadata goes through the `file` edge's SyncBlockIO and an in-memory cache; guest data through
/// the edge's async I/O, split per cluster. Both children are edges, so a graph change (a snapshot
/// under the backing, a mirror switching the file) redirects the next request.
public final class Qcow2Driver: BlockDriver {
    let file: BdrvChild
    private(set) var backing: BdrvChild?
    public let isReadOnly: Bool
    private let cacheLimits: Qcow2CacheLimits
    var metadata: Qcow2Metadata
    /// Guest clusters whose allocation (copy-on-write and data write) is in flight, with the
    /// requests that touch them and wait for it to finish.
    var allocating: [Int64: [() -> Void]] = [:]
    /// Guest data requests on the file child not completed yet, by the order they started in.
    private var inFlight: Set<Int> = []
    private var requestsStarted = 0
    /// Guest data writes (and copy-on-writes) on the file child not completed yet.
    private var writesInFlight = 0
    /// Requests waiting for `writesInFlight` to drop to zero (see `writeStarted`).
    private var waitingForWrites: [() -> Void] = []
    /// Told when the image's metadata is found inconsistent (BLOCK_IMAGE_CORRUPTED); it stays
    /// attached across `activate`, which reads the metadata anew.
    public var onCorruption: ((Qcow2CorruptionReport) -> Void)? {
        didSet { metadata.onCorruption = onCorruption }
    }
    /// After `inactivate`: another process owns the image until `activate`.
    private(set) var isInactive = false

    /// Opens the image through `file` (the edge to its protocol node). The backing edge, if any,
    /// comes later (`setBacking`): the header names it.
    public convenience init(file: BdrvChild, readOnly: Bool) throws(BlockError) {
        try self.init(file: file, readOnly: readOnly, cacheLimits: .standard)
    }

    /// `cacheLimits`: smaller caches let tests exercise eviction.
    init(file: BdrvChild, readOnly: Bool, cacheLimits: Qcow2CacheLimits) throws(BlockError) {
        self.file = file
        isReadOnly = readOnly
        self.cacheLimits = cacheLimits
        metadata = try Qcow2Metadata(file: file, fileLength: Self.fileEnd(file), writable: !readOnly,
                                     imageName: Self.imageName(file), cacheLimits: cacheLimits)
    }

    /// Like QEMU's close: cached metadata reaches the disk.
    deinit {
        guard !isReadOnly, !isInactive, metadata.isDirty else { return }
        try? metadata.writeBack(releasableTag: releasableTag)
        try? file.flushSync()
    }

    /// The size of the file now, which another process may have changed since it was opened.
    private static func fileEnd(_ file: BdrvChild) -> Int64 {
        if let fileDriver = file.node.driver as? FileDriver {
            let end = lseek(fileDriver.fd, 0, SEEK_END)
            if end >= 0 { return Int64(end) }
        }
        return file.length
    }

    /// The host file, for messages that name the image.
    private static func imageName(_ file: BdrvChild) -> String? {
        (file.node.driver as? FileDriver)?.options.filename
    }

    /// The virtual disk size, in whole sectors as QEMU counts it.
    public var length: Int64 { Int64(metadata.header.size / 512 * 512) }
    public var backingFileName: String? { metadata.backingFileName }
    public var backingFormat: String? { metadata.extensions.backingFormat }
    var clusterBits: Int { metadata.clusterBits }
    var clusterSize: Int { metadata.clusterSize }

    /// The backing edge: opened from the header or `backing=`, or attached by blockdev-snapshot.
    public func setBacking(_ backing: BdrvChild?) { self.backing = backing }

    public func plug() { file.plug() }
    public func unplug() { file.unplug() }

    /// bdrv_co_flush for qcow2: the cached metadata is written back (qcow2_co_flush_to_os) before
    /// `flush_to_disk` is raised on the file child and the file is flushed.
    public var raisesFlushToDisk: Bool { true }

    public func flush(completion: @escaping IoCompletion) {
        guard !isReadOnly, !isInactive else {
            file.raiseFlushToDiskForParent()
            return file.flush(completion: completion)
        }
        if let park = parking(0, 0, writing: true) { return park { [self] in flush(completion: completion) } }
        do {
            try metadata.writeBack(releasableTag: releasableTag)
        } catch {
            return completion(.failure(error))
        }
        file.raiseFlushToDiskForParent()
        file.flush(completion: completion)
    }

    /// Migration hand-over: writes back every dirty cached table, flushes, drops the caches.
    /// No writes until `activate`.
    public func inactivate() throws(BlockError) {
        guard !isInactive else { return }
        guard inFlight.isEmpty, allocating.isEmpty, waitingForWrites.isEmpty else {
            throw BlockError("qcow2: cannot inactivate the image with requests in flight", errno: EBUSY)
        }
        if !isReadOnly {
            try metadata.writeBack(releasableTag: .max)
            try file.flushSync()
        }
        metadata.dropCaches()
        isInactive = true
    }

    /// Re-reads header, L1 and refcount table: another process may have written the image.
    public func activate() throws(BlockError) {
        guard inFlight.isEmpty, allocating.isEmpty, waitingForWrites.isEmpty else {
            throw BlockError("qcow2: cannot activate the image with requests in flight", errno: EBUSY)
        }
        if !isInactive && !isReadOnly { try metadata.writeBack(releasableTag: .max) }
        metadata = try Qcow2Metadata(file: file, fileLength: Self.fileEnd(file), writable: !isReadOnly,
                                     imageName: Self.imageName(file), cacheLimits: cacheLimits, onCorruption: onCorruption)
        metadata.releaseTag = requestsStarted
        isInactive = false
    }

    /// Counts a guest data request on the file child; returns its number for `requestDone`.
    func requestStarted() -> Int {
        let number = requestsStarted
        requestsStarted += 1
        inFlight.insert(number)
        metadata.releaseTag = requestsStarted
        return number
    }

    func requestDone(_ number: Int) { inFlight.remove(number) }

    /// Clusters released with this tag or a lower one can be reused: every request that started
    /// before their release is done.
    private var releasableTag: Int { inFlight.min() ?? requestsStarted }

    /// With clusters under 4 KiB, metadata and guest data share 4 KiB blocks, and the file child
    /// writes metadata by read-modify-write of whole blocks: a metadata write while a guest write
    /// is in flight could put back stale data. So such images take one guest write (or zeroing,
    /// discard, flush) at a time, and write metadata only between them.
    func writeStarted() {
        writesInFlight += 1
        if clusterSize < 4096 { metadata.holdsDirtyTables = true }
    }

    func writeDone() {
        writesInFlight -= 1
        guard writesInFlight == 0 else { return }
        metadata.holdsDirtyTables = false
        let waiting = waitingForWrites
        waitingForWrites.removeAll()
        waiting.forEach { $0() }
    }

    /// Why this node takes no writes now, if it does not.
    func writeRefusal() -> BlockError? {
        if isReadOnly { return BlockError("Block node is read-only", errno: EPERM) }
        if isInactive { return BlockError("Block node is inactive", errno: EPERM) }
        if metadata.isCorrupt { return BlockError("qcow2: Image is corrupt; writes are refused", errno: EIO) }
        return nil
    }

    /// How to park a request that cannot start yet, to be run again later; nil if it can start.
    /// Requests touching a cluster under allocation wait for it; on small-cluster images,
    /// `writing` requests wait for the guest writes in flight (see `writeStarted`).
    func parking(_ offset: Int64, _ length: Int64, writing: Bool) -> ((@escaping () -> Void) -> Void)? {
        if !allocating.isEmpty, length > 0 {
            let clusters = (offset >> clusterBits)...((offset + length - 1) >> clusterBits)
            if let cluster = allocating.keys.first(where: { clusters.contains($0) }) {
                return { [self] in allocating[cluster, default: []].append($0) }
            }
        }
        if writing && clusterSize < 4096 && writesInFlight > 0 {
            return { [self] in waitingForWrites.append($0) }
        }
        return nil
    }
}
