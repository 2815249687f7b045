import Glibc

/// The mirror block job (QEMU's block/mirror.c): copies what the job's dirty bitmap on the source
/// marks to the target, in chunks of up to `chunkSize` with at most 16 requests in flight, until
/// nothing is dirty (READY); then keeps the target in sync from the bitmap that guest writes
/// through `mirror_top` keep marking. `block-job-complete` converges inside a drained section
/// and switches every parent of the source to the target at finalization (`prepare`).
final class MirrorJob: Job {
    static let maxInFlight = 16
    static let maxChunk: Int64 = 64 << 20

    let source: BlockNode
    /// The node whose parents move to the target on completion (`replaces`, else the source).
    let replaced: BlockNode
    let target: BlockNode
    let top: BlockNode
    let topDriver: MirrorTopDriver
    let targetBackend: BlockBackend
    let bitmap: BdrvDirtyBitmap
    let options: MirrorOptions
    let granularity: Int64
    let bufSize: Int64
    let chunkSize: Int64
    private let loop: FdWatcher
    /// The source's host file (through raw filters), whose holes are zeroed without a read.
    private let sourceFile: (fd: Int32, base: Int64)?

    private var copies: [MirrorRange] = []
    private var activeWrites: [MirrorRange] = []
    private var bytesInFlight: Int64 = 0
    private var cursor: Int64 = 0
    private var shouldComplete = false
    private var wakeScheduled = false
    private var timer: LoopTimer?
    private var rateLimit = MirrorRateLimit()
    private var flushing = false
    /// The run is over (converging, cancelled or failed): nothing new is started.
    private var ending = false
    private var exited = false
    /// A reported I/O error that ends the job once the requests in flight are back.
    private var failure: (ret: Int32, text: String)?
    /// Ends the drained section the job converged in, after the graph change.
    private var drainEnd: (() -> Void)?
    private var freeBuffers: [UnsafeMutableRawPointer] = []
    /// Who waits in `whenSynced` (a migration's switch-over).
    private var syncedWaiters: [() -> Void] = []

    init(options: MirrorOptions, source: BlockNode, replaced: BlockNode, target: BlockNode, top: BlockNode, topDriver: MirrorTopDriver,
         targetBackend: BlockBackend, bitmap: BdrvDirtyBitmap, bufSize: Int64, graph: BlockGraph, loop: FdWatcher) {
        self.options = options
        self.source = source
        self.replaced = replaced
        self.target = target
        self.top = top
        self.topDriver = topDriver
        self.targetBackend = targetBackend
        self.bitmap = bitmap
        granularity = bitmap.granularity
        self.bufSize = bufSize
        // QEMU's max_io_bytes, capped at the largest granularity so a huge buf-size cannot ask for
        // one huge buffer.
        let perRequest = min(bufSize / Int64(Self.maxInFlight), Self.maxChunk)
        chunkSize = max(perRequest, bitmap.granularity) / bitmap.granularity * bitmap.granularity
        self.loop = loop
        sourceFile = MirrorAllocation.hostFile(of: source)
        super.init(id: options.jobID, type: "mirror", graph: graph, autoFinalize: options.autoFinalize, autoDismiss: options.autoDismiss)
        speed = options.speed
    }

    deinit {
        for buffer in freeBuffers { free(buffer) }
    }

    // MARK: Job

    /// mirror_run's start: the sizes must match; then the bulk pass begins.
    override func run() {
        guard source.driver.length == target.driver.length else {
            return workFinished(ret: -EINVAL, error: "Source and target image have different sizes")
        }
        updateProgress()
        wake()
    }

    override func wake() {
        guard !wakeScheduled else { return }
        wakeScheduled = true
        loop.runSoon { [weak self] in
            guard let self else { return }
            wakeScheduled = false
            iterate()
        }
    }

    /// Before a migration's switch-over inactivates the images (the VM already stopped), a READY
    /// mirror copies what the guest wrote last, so the target equals the source when the
    /// destination takes over; once inactive, nothing could be copied any more. QEMU inactivates
    /// at once; svmm waits. A job not copying (paused, ending) answers at once.
    func whenSynced(_ body: @escaping () -> Void) {
        guard status == .ready, !exited, !ending else { return body() }
        syncedWaiters.append(body)
        wake()
    }

    private func releaseSyncedWaiters() {
        let waiters = syncedWaiters
        syncedWaiters = []
        for waiter in waiters { waiter() }
    }

    override func complete() throws(BlockError) {
        shouldComplete = true
    }

    /// mirror_cancel: after READY a plain cancel ends the job without switching (QEMU 7.2).
    override func cancelled(force: Bool) -> Bool {
        force || !isReady
    }

    override func prepare() -> Int32 { exitCommon(abort: false) }

    override func abort() { _ = exitCommon(abort: true) }

    // MARK: the copy loop (mirror_run / mirror_iteration)

    private func iterate() {
        guard !ending else { return }
        if pausePoint() { return }
        // While migration has the images inactive the job copies nothing (it may still end);
        // once they are active again the target's backend takes its permissions back
        // (blk_root_activate).
        let inactive = source.inactive || target.inactive
        if !inactive && targetBackend.disablePerm { try? targetBackend.resumeAfterMigration() }
        let stopping = isCancelled || failure != nil
        if !stopping && !inactive && !source.isQuiesced && !target.isQuiesced { issueCopies() }
        updateProgress()
        guard copies.isEmpty, activeWrites.isEmpty, !flushing else { return }  // a completion wakes the job
        if bitmap.count == 0 || failure != nil || status != .ready { releaseSyncedWaiters() }
        if let failure { return end(ret: failure.ret, error: failure.text) }
        if stopping { return end(ret: 0, error: nil) }
        if source.isQuiesced || target.isQuiesced { return retry(after: .milliseconds(1)) }
        guard bitmap.count == 0 else {
            if inactive { retry(after: .milliseconds(50)) }
            return  // rate limited: the timer wakes the job
        }
        if !isReady { return flushThenReady() }
        if shouldComplete || cancelRequested { converge() }
    }

    /// Starts copies while there is room: 16 requests, `bufSize` bytes. As QEMU's mirror_iteration,
    /// the speed is checked once per pass: a pass sends up to a buffer, and the limit then makes
    /// the next one wait as long as that took at `speed`.
    private func issueCopies() {
        if let delay = rateLimit.delay(speed: speed) { return retry(after: delay) }
        // A request may fail at once (a target that is gone): its error stops the loop here.
        var started = 0
        while copies.count + activeWrites.count < Self.maxInFlight && bytesInFlight < bufSize && failure == nil && !isPaused
                && started < Self.maxInFlight {
            started += 1
            guard let range = nextDirtyRange() else { return }
            guard let buffer = takeBuffer() else {
                // qemu_try_blockalign failed: the job ends with ENOMEM.
                failure = (-ENOMEM, String(cString: strerror(ENOMEM)))
                return
            }
            startCopy(range, buffer)
        }
    }

    /// The next dirty run after the cursor (wrapping once), at most a chunk, and not overlapping
    /// a request in flight (QEMU's mirror_wait_on_conflicts, by skipping instead of waiting).
    private func nextDirtyRange() -> MirrorRange? {
        var from = cursor
        var wrapped = false
        // Bounded: when everything dirty is in flight, the job waits for a completion instead.
        for _ in 0..<(4 * Self.maxInFlight) {
            guard let run = bitmap.nextDirtyRun(from: from) else {
                if wrapped || cursor == 0 { return nil }
                wrapped = true
                from = 0
                continue
            }
            let candidate = MirrorRange(offset: run.offset, length: min(run.length, chunkSize))
            guard let conflict = (copies + activeWrites).first(where: { $0.overlaps(candidate) }) else {
                cursor = candidate.end
                return candidate
            }
            if conflict.offset > candidate.offset {
                let clipped = MirrorRange(offset: candidate.offset, length: conflict.offset - candidate.offset)
                cursor = clipped.end
                return clipped
            }
            from = conflict.end
        }
        return nil
    }

    private func startCopy(_ range: MirrorRange, _ buffer: UnsafeMutableRawPointer) {
        bitmap.reset(offset: range.offset, length: range.length)
        copies.append(range)
        bytesInFlight += range.length
        rateLimit.account(range.length)
        let vector = IoVector(UnsafeMutableRawBufferPointer(start: buffer, count: Int(range.length)))
        if let sourceFile, MirrorAllocation.isHole(range, in: sourceFile) {
            rateLimit.refund(range.length)
            return targetBackend.writeZeroes(at: range.offset, length: range.length, mayUnmap: options.unmap) { [self] result in
                if case .failure(let error) = result { return copyFinished(range, buffer, failed: (error, "write")) }
                copyFinished(range, buffer, failed: nil)
            }
        }
        topDriver.source.read(at: range.offset, into: vector) { [self] result in
            if case .failure(let error) = result {
                return copyFinished(range, buffer, failed: (error, "read"))
            }
            let finish: IoCompletion = { [self] result in
                if case .failure(let error) = result { return copyFinished(range, buffer, failed: (error, "write")) }
                copyFinished(range, buffer, failed: nil)
            }
            if Self.isZero(buffer, count: Int(range.length)) {
                rateLimit.refund(range.length)
                targetBackend.writeZeroes(at: range.offset, length: range.length, mayUnmap: options.unmap, completion: finish)
            } else {
                targetBackend.write(at: range.offset, from: vector, completion: finish)
            }
        }
    }

    private func copyFinished(_ range: MirrorRange, _ buffer: UnsafeMutableRawPointer, failed: (BlockError, String)?) {
        if let index = copies.firstIndex(of: range) { copies.remove(at: index) }
        bytesInFlight -= range.length
        freeBuffers.append(buffer)
        if let (error, operation) = failed {
            bitmap.set(offset: range.offset, length: range.length)  // still to be copied
            handleError(error, operation: operation, policy: operation == "read" ? options.onSourceError : options.onTargetError)
        } else {
            progressCurrent += range.length
        }
        // After an error the next pass waits a little: a target that fails at once under
        // `ignore` must not keep the loop busy.
        if failed != nil { retry(after: .milliseconds(10)) } else { wake() }
    }

    /// mirror_error_action / block_job_error_action: BLOCK_JOB_ERROR, then the policy's action.
    private func handleError(_ error: BlockError, operation: String, policy: JobErrorPolicy) {
        let action = policy.action(for: error.errno)
        registry?.emit(.ioError(self, operation: operation, action: action))
        switch action {
        case .ignore:
            break
        case .report:
            if failure == nil { failure = (-error.errno, String(cString: strerror(error.errno))) }
        case .stop:
            stopOnError(ioStatus: error.errno == ENOSPC ? "nospace" : "failed")
        }
    }

    /// Before READY the target is flushed (mirror_flush), so READY means durable too.
    private func flushThenReady() {
        flushing = true
        targetBackend.flush { [self] result in
            flushing = false
            if case .failure(let error) = result {
                handleError(error, operation: "write", policy: options.onTargetError)
            } else if status == .running && bitmap.count == 0 {
                becomeReady()
            }
            wake()
        }
    }

    /// The end of mirror_run for complete and soft cancel: drain the source, check that nothing
    /// became dirty meanwhile, flush the target (mirror_flush), and leave the loop inside the
    /// drained section, which the graph change (or the abort) ends.
    private func converge() {
        ending = true
        graph.drain([source], excluding: self) { [self] end in
            guard bitmap.count == 0, copies.isEmpty, activeWrites.isEmpty else { return keepGoing(end) }
            targetBackend.flush { [self] result in
                if case .failure(let error) = result {
                    handleError(error, operation: "write", policy: options.onTargetError)
                    return keepGoing(end)
                }
                guard bitmap.count == 0 else { return keepGoing(end) }
                drainEnd = end
                workFinished(ret: 0)
            }
        }
    }

    /// Not converged after all: out of the drained section, back to copying.
    private func keepGoing(_ end: () -> Void) {
        ending = false
        end()
        wake()
    }

    /// A cancelled or failed run: nothing in flight any more; drain, then end the job.
    private func end(ret: Int32, error: String?) {
        ending = true
        graph.drain([source], excluding: self) { [self] end in
            drainEnd = end
            workFinished(ret: ret, error: error)
        }
    }

    private func retry(after delay: Duration) {
        guard timer == nil else { return }
        timer = try? loop.schedule(after: delay) { [weak self] in
            self?.timer = nil
            self?.wake()
        }
        if timer == nil { loop.runSoon { [weak self] in self?.wake() } }
    }

    /// query-jobs' total: what is done plus what is dirty or in flight (job_progress_set_remaining).
    private func updateProgress() {
        progressTotal = progressCurrent + bitmap.count + bytesInFlight
        busy = !copies.isEmpty || !activeWrites.isEmpty
    }

    // MARK: guest writes through mirror_top

    /// After a guest write reached the source (the edge marked the bitmap): in write-blocking
    /// mode the same data goes to the target before the guest's request completes
    /// (do_sync_target_write); the granules it fully replaced are clean unless another request
    /// on them is in flight. A failed target write leaves them dirty and never fails the guest.
    func sourceWritten(offset: Int64, length: Int64, data: MirrorWrite?, completion: @escaping () -> Void) {
        wake()
        guard options.copyMode == .writeBlocking, !ending, !isCancelled, failure == nil, let data else { return completion() }
        let written = MirrorRange(offset: offset, length: length)
        let range = written.widened(to: granularity)
        activeWrites.append(range)
        let done: IoCompletion = { [self] result in
            if let index = activeWrites.firstIndex(of: range) { activeWrites.remove(at: index) }
            switch result {
            case .success:
                if let clean = written.narrowed(to: granularity), !(copies + activeWrites).contains(where: { $0.overlaps(range) }) {
                    bitmap.reset(offset: clean.offset, length: clean.length)
                }
            case .failure(let error):
                handleError(error, operation: "write", policy: options.onTargetError)
            }
            completion()
            wake()
        }
        switch data {
        case .data(let vector): targetBackend.write(at: offset, from: vector, completion: done)
        case .zeroes: targetBackend.writeZeroes(at: offset, length: length, mayUnmap: options.unmap, completion: done)
        }
    }

    // MARK: the end (mirror_exit_common)

    /// Once, from prepare or abort: the target's backend goes first, the filter stops forwarding
    /// permissions, then (completion without error) every parent of the source moves to the target;
    /// the job's edges and the filter go away and the drained section ends.
    private func exitCommon(abort: Bool) -> Int32 {
        guard !exited else { return 0 }
        exited = true
        releaseSyncedWaiters()
        timer?.cancel()
        targetBackend.removeNode()
        topDriver.stopped = true
        topDriver.job = nil
        try? graph.refresh([top])
        var ret: Int32 = 0
        if !abort, let backing = options.backingOnCompletion, target.backing !== backing {
            graph.setBackingOnCompletion(of: target, to: backing)
        }
        for edge in edges { try? graph.detach(edge, from: nil) }
        edges.removeAll()
        for node in [top, source, target] { node.removeBlockers(ownedBy: self) }
        source.dirtyBitmaps.removeAll { $0 === bitmap }
        let switching = !abort && shouldComplete
        do {
            try graph.removeMirrorTop(top, movingParentsTo: switching ? target : source, from: switching ? replaced : nil)
        } catch {
            // QEMU prints the error and fails the job with EPERM; the guest stays on the source.
            try? graph.removeMirrorTop(top, movingParentsTo: source, from: nil)
            ret = -EPERM
        }
        drainEnd?()
        drainEnd = nil
        return ret
    }

    // MARK: buffers

    /// A chunk buffer, aligned for O_DIRECT; the job never has more than 16 of them.
    private func takeBuffer() -> UnsafeMutableRawPointer? {
        if let buffer = freeBuffers.popLast() { return buffer }
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 4096, Int(chunkSize)) == 0 else { return nil }
        return pointer
    }

    private static func isZero(_ buffer: UnsafeMutableRawPointer, count: Int) -> Bool {
        let words = buffer.bindMemory(to: UInt64.self, capacity: count / 8)
        for index in 0..<(count / 8) where words[index] != 0 { return false }
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        for index in (count / 8 * 8)..<count where bytes[index] != 0 { return false }
        return true
    }
}
