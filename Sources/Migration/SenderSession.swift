import Block
import Machine

/// The sender thread's side of one outgoing migration: the stream it writes, the throttle,
/// the statistics, and what it changed that a failure must undo (`undo`, which the loop applies
/// once the thread is done). Not Sendable: it lives and dies on the sender thread.
final class SenderSession {
    private let migration: OutgoingMigration
    private var machine: LoopBound<Machine> { migration.machine }
    private var ram: GuestRam { migration.ram }
    private var channel: MigrationChannel?
    private var encoder = StreamEncoder(buffer: RecordBuffer(capacity: 2 << 20))
    private var throttle = BandwidthThrottle()
    private var stats = MigrationStats()
    private let pageCount: Int
    /// What the loop changed, for the end of the migration.
    private(set) var undo: SenderUndo
    /// Their start chunks (one per bitmap), for the stream.
    private var bitmapStarts: [DirtyBitmapRecord] = []
    private var sourceRunState = ""
    private var stopTime: Int64 = 0
    // Bandwidth over the last phase (bulk pass or iteration).
    private var phaseStart = MonotonicClock.microseconds
    private var phaseBytes: UInt64 = 0
    /// A verdict line that arrived while the last bytes were written.
    private var earlyVerdict: String?

    init(migration: OutgoingMigration) {
        self.migration = migration
        undo = SenderUndo(ram: migration.ram)
        pageCount = migration.ram.pageCount
        stats.total = UInt64(migration.ram.size)
    }

    func run() throws(MigrationFailure) {
        try connect()
        try startTracking()
        try collectBitmaps()
        stats.setupTime = migration.elapsed
        stats.dirtySyncCount = 1
        stats.remaining = stats.total
        // Until a pass is measured QEMU shows the limit as the expected downtime.
        stats.expectedDowntime = Int64(migration.shared.withLock { $0.downtimeLimit })
        publish()
        migration.pass(1)
        migration.onLoop(.active)
        encoder.header()
        encoder.record(.machine, name: "machine", payload: migration.description.encoded())
        // dirty_bitmap_save_setup: the destination creates the bitmaps before any page comes.
        for start in bitmapStarts { start.encode(into: &encoder) }
        try write(throttled: true)
        try sendPages(0..<pageCount, count: pageCount, throttled: true)
        let rest = try iterate()
        try switchOver(sending: rest)
    }

    // MARK: phases

    private func connect() throws(MigrationFailure) {
        let opened: MigrationChannel
        do { opened = try MigrationChannel.connect(migration.uri) } catch { throw MigrationFailure(error) }
        channel = opened
        let cancelled = migration.shared.withLock { state -> Bool in
            state.channel = opened
            return state.cancelRequested
        }
        if cancelled { throw .cancelled }
    }

    private func startTracking() throws(MigrationFailure) {
        let problem = LoopBridge<String?>.call(on: machine) { machine in
            do throws(MachineError) { try machine.ram.startDirtyTracking() } catch { return error.description }
            return nil
        }
        if let problem { throw .failed(problem) }
        undo.trackingStarted = true
    }

    /// init_dirty_bitmap_migration, with `dirty-bitmaps` on: a bitmap that cannot be migrated
    /// fails the migration before anything is sent.
    private func collectBitmaps() throws(MigrationFailure) {
        guard migration.migratesBitmaps else { return }
        let found = LoopBridge<Result<(LoopBound<OutgoingBitmaps>, [DirtyBitmapRecord]), BlockError>>.call(on: machine) { machine in
            Result { () throws(BlockError) in
                let collected = try OutgoingBitmaps(graph: machine.graph)
                return (machine.bind(collected), collected.starts)
            }
        }
        switch found {
        case .success(let (collected, starts)):
            undo.bitmaps = collected
            bitmapStarts = starts
        case .failure(let error): throw .failed(error.description)
        }
    }

    /// Dirty passes until the rest fits the downtime limit at the bandwidth measured
    /// (migration_iteration_run / migration_should_complete); returns the rest.
    private func iterate() throws(MigrationFailure) -> [Int] {
        while true {
            if migration.isCancelled { throw .cancelled }
            let iterationStart = MonotonicClock.microseconds
            let pages = try fetchDirty().dirtyPages
            stats.dirtySyncCount += 1
            migration.pass(Int(stats.dirtySyncCount))
            let bytesPerMillisecond = max(Double(phaseBytes) * 1000 / Double(max(MonotonicClock.microseconds - phaseStart, 1)), 1)
            let remaining = UInt64(pages.count * MigrationStream.pageSize)
            stats.remaining = remaining
            stats.mbps = bytesPerMillisecond * 0.008
            stats.expectedDowntime = Int64(Double(remaining) / bytesPerMillisecond)
            publish()
            let limit = migration.shared.withLock { $0.downtimeLimit }
            if stats.expectedDowntime <= Int64(limit) { return pages }
            phaseStart = MonotonicClock.microseconds
            phaseBytes = 0
            try sendPages(pages, count: pages.count, throttled: true)
            encoder.record(.ramEndOfIteration, name: "ram")
            try write(throttled: true)
            let seconds = Double(max(MonotonicClock.microseconds - iterationStart, 1)) / 1_000_000
            stats.dirtyPagesRate = UInt64(Double(pages.count) / seconds)
            stats.pagesPerSecond = UInt64(Double(pages.count) / seconds)
            publish()
        }
    }

    /// migration_completion: stop the VM, (pause-before-switchover), drain and inactivate the
    /// images and save the device state on the loop; send the rest, the state and the end;
    /// wait for the destination's verdict.
    private func switchOver(sending rest: [Int]) throws(MigrationFailure) {
        // postcopy_start (bitmaps only: what is left to postcopy is their bits) says
        // postcopy-active before it stops the VM.
        let postcopy = migration.postcopyRequested && !bitmapStarts.isEmpty
        if postcopy { migration.onLoop(.postcopyActive) }
        // global_state_store comes before the stop: the destination resumes in this state.
        (sourceRunState, undo.stoppedVM) = LoopBridge<(String, Bool)>.call(on: machine) { machine in
            (machine.runState.rawValue, machine.stopForMigration())
        }
        stopTime = MonotonicClock.milliseconds
        if migration.pauseBeforeSwitchover {
            migration.onLoop(.preSwitchover)
            try migration.waitForContinue()
            migration.onLoop(postcopy ? .postcopyActive : .device)
        }
        if migration.isCancelled { throw .cancelled }
        let outcome = LoopBridge<SwitchoverOutcome>.run(on: machine) { machine, done in
            // Requests the guest published before it stopped complete first (blk_drain per device).
            do throws(MachineError) { try machine.drainDeviceRequests() } catch { return done(.failed(error.description, inactivated: false)) }
            // A READY mirror (storage migration) copies the guest's last writes first.
            machine.graph.jobs.whenMirrorsSynced {
                machine.graph.inactivateAll { result in
                    if case .failure(let error) = result { return done(.failed("bdrv_inactivate_all() failed: \(error)", inactivated: false)) }
                    do throws(MachineError) { done(.saved(try machine.saveState())) } catch { done(.failed(error.description, inactivated: true)) }
                }
            }
        }
        let sections: [StateSection]
        switch outcome {
        case .saved(let saved):
            undo.inactivated = true
            sections = saved
        case .failed(let problem, let inactivated):
            undo.inactivated = inactivated
            throw .failed(problem)
        }
        let bitmapChunks = finalBitmapChunks()
        var final = Set(rest)
        final.formUnion(try fetchDirty().dirtyPages)
        stats.dirtySyncCount += 1
        try sendPages(final.sorted(), count: final.count, throttled: false)
        encoder.record(.ramEndOfIteration, name: "ram")
        if !postcopy { for chunk in bitmapChunks { chunk.encode(into: &encoder) } }
        for section in sections {
            encoder.record(.device, name: section.name, instance: section.instanceId, version: section.version, payload: section.payload)
        }
        encoder.record(.globalState, name: "globalstate", payload: [UInt8(sourceRunState.utf8.count)] + Array(sourceRunState.utf8))
        if postcopy {
            // The destination loads the devices and runs; the bitmaps' bits follow.
            encoder.record(.postcopyRun, name: "postcopy-run")
            try write(throttled: false)
            undo.postcopyRunSent = true
            for chunk in bitmapChunks { chunk.encode(into: &encoder) }
        }
        encoder.record(.end, name: "end")
        try write(throttled: false)
        channel?.finishWriting()
        try awaitVerdict()
        stats.remaining = 0
        stats.downtime = MonotonicClock.milliseconds - stopTime
        stats.totalTime = migration.elapsed
        publish()
    }

    /// The bitmaps' bits and completions, taken on the loop: the VM is stopped and the images
    /// are inactive, so they change no more.
    private func finalBitmapChunks() -> [DirtyBitmapRecord] {
        guard let bitmaps = undo.bitmaps else { return [] }
        return bitmaps.performAndWait { $0.finalChunks() }
    }

    /// The destination answers `OK` once it loaded everything, or `ERR <why>`; an `exec:` command
    /// that says nothing is judged by its exit status.
    private func awaitVerdict() throws(MigrationFailure) {
        guard let channel else { return }
        let line = earlyVerdict ?? channel.readLine(timeoutMilliseconds: 120_000)
        if migration.isCancelled { throw .cancelled }
        if line == "OK" {
            _ = channel.waitForChild()
            return
        }
        if let line, line.hasPrefix("ERR ") {
            _ = channel.waitForChild()
            throw .failed("the destination refused the stream: \(line.dropFirst(4))")
        }
        if case .exec(let command) = migration.uri {
            let status = channel.waitForChild() ?? 0
            if status == 0 { return }
            throw .failed("exec: '\(command)' exited with status \(status)")
        }
        throw .failed("the destination closed the connection before accepting the stream")
    }

    // MARK: pages and bytes

    private func fetchDirty() throws(MigrationFailure) -> DirtyPages {
        do { return DirtyPages(try ram.fetchDirtyPages()) } catch { throw .failed(error.description) }
    }

    private func sendPages<S: Sequence<Int>>(_ pages: S, count: Int, throttled: Bool) throws(MigrationFailure) {
        var left = count
        var inRecord = 0
        for page in pages {
            if inRecord == 0 { encoder.open(.ram, name: "ram") }
            let ram = self.ram
            let kind: RamPageKind
            do {
                // A zero page is seen in place and sent as a marker without being copied.
                if try ram.pageIsZero(page) {
                    encoder.zeroPage(UInt32(page))
                    kind = .zero
                } else {
                    kind = try encoder.page(UInt32(page)) { room in try ram.readPage(page, into: room) }
                }
            } catch {
                throw .failed("\(error)")
            }
            if kind == .zero { stats.duplicate += 1 } else { stats.normal += 1 }
            inRecord += 1
            left -= 1
            if inRecord == MigrationStream.pagesPerRecord {
                encoder.close()
                inRecord = 0
                stats.remaining = UInt64(max(left, 0) * MigrationStream.pageSize)
                try write(throttled: throttled)
            }
        }
        if inRecord > 0 {
            encoder.close()
            stats.remaining = 0
            try write(throttled: throttled)
        }
    }

    private func write(throttled: Bool) throws(MigrationFailure) {
        if migration.isCancelled { throw .cancelled }
        guard let channel else { return }
        let bytes = encoder.buffer.contents
        do { try channel.writeAll(bytes) } catch {
            throw migration.isCancelled ? .cancelled : .failed(describeWriteFailure(error))
        }
        let count = UInt64(bytes.count)
        encoder.buffer.removeAll()
        // The destination may refuse before the stream ends: stop at once, saying why.
        if let line = channel.readLine(timeoutMilliseconds: 0) {
            if line.hasPrefix("ERR ") { throw .failed("the destination refused the stream: \(line.dropFirst(4))") }
            earlyVerdict = line
        }
        stats.transferred += count
        phaseBytes += count
        if undo.stoppedVM == nil { stats.precopyBytes += count } else { stats.downtimeBytes += count }
        stats.totalTime = migration.elapsed
        publish()
        if throttled {
            let limit = migration.shared.withLock { $0.maxBandwidth }
            throttle.sent(Int(count), limit: limit)
        }
    }

    /// A write that failed because the destination gave up says why, if it managed to.
    private func describeWriteFailure(_ error: MigrationError) -> String {
        if let line = channel?.readLine(timeoutMilliseconds: 200), line.hasPrefix("ERR ") {
            return "\(error.description) (the destination refused the stream: \(line.dropFirst(4)))"
        }
        return error.description
    }

    private func publish() {
        let snapshot = stats
        migration.publish { $0 = snapshot }
    }

    func close() { channel?.close() }
}
