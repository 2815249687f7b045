import Block
import KVM
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
    private let convergence = ConvergenceRule()
    /// Stream bytes between two dirty-log syncs within a pass (~9 ms of a live pass here).
    private static let midPassSync: UInt64 = 8 << 20
    private var stats = MigrationStats()
    /// During the bulk pass: pages known to read zero without being looked at.
    private var unpopulated: UnpopulatedPages?
    private let pageCount: Int
    /// What the loop changed, for the end of the migration.
    private(set) var undo: SenderUndo
    /// Their start chunks (one per bitmap), for the stream.
    private var bitmapStarts: [DirtyBitmapRecord] = []
    private var sourceRunState = ""
    private var stopTime: Int64 = 0
    private var pagesAtPassStart: UInt64 = 0
    private var lastSync = MonotonicClock.microseconds
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
        var pending = try precopy()
        try switchOver(sending: &pending)
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

    /// migration_iteration_run: a pass sends the pages pending when it began (all of them at
    /// first, the bulk pass), then the dirty log is synced into the pending set and
    /// `ConvergenceRule` says whether the rest goes with the VM stopped or another pass is made.
    /// Within a pass the dirty log is synced every `midPassSync` bytes sent (Xen's "skip pages
    /// dirtied in this round"): a page dirtied again before the pass reached it is then sent
    /// once, with its latest bytes, instead of now and again in the next pass; pages dirtied
    /// behind the cursor wait for the next pass. Returns the pages still pending.
    private func precopy() throws(MigrationFailure) -> PendingPages {
        var pending = PendingPages(pageCount: pageCount, all: true)
        var bulkPass = true
        unpopulated = UnpopulatedPages(ram: ram)
        while true {
            let passStart = MonotonicClock.microseconds
            let passBytes = stats.transferred
            let sent = try sendPass(&pending)
            unpopulated = nil
            try sync(into: &pending)
            let elapsed = max(MonotonicClock.microseconds - passStart, 1)
            let bytesPerMillisecond = max(Double(stats.transferred - passBytes) * 1000 / Double(elapsed), 1)
            stats.mbps = bytesPerMillisecond * 0.008
            stats.expectedDowntime = Int64(min(Double(pending.bytes) / bytesPerMillisecond, Double(Int64.max / 2)))
            stats.pagesPerSecond = UInt64(Double(stats.normal + stats.duplicate - pagesAtPassStart) * 1_000_000 / Double(elapsed))
            pagesAtPassStart = stats.normal + stats.duplicate
            publish()
            let limit = migration.shared.withLock { $0.downtimeLimit }
            if convergence.switchOver(pendingBytes: pending.bytes, sentBytes: UInt64(sent) * UInt64(MigrationStream.pageSize),
                                      bytesPerMillisecond: bytesPerMillisecond, downtimeLimit: limit, bulkPass: bulkPass) {
                return pending
            }
            bulkPass = false
        }
    }

    /// One pass: at most the pages pending when it began, with the mid-pass syncs. Returns the
    /// pages it sent.
    private func sendPass(_ pending: inout PendingPages) throws(MigrationFailure) -> Int {
        let passPages = pending.count
        var budget = passPages
        var syncedAt = stats.transferred
        while !pending.isEmpty, budget > 0 {
            if migration.isCancelled { throw .cancelled }
            let pages = pending.take(upTo: min(MigrationStream.pagesPerRecord, budget))
            budget -= pages.count
            try sendPages(pages, throttled: true)
            stats.remaining = pending.bytes
            if stats.transferred - syncedAt >= Self.midPassSync, budget > 0 {
                try sync(into: &pending)
                syncedAt = stats.transferred
            }
        }
        return passPages - budget
    }

    /// migration_bitmap_sync: the pages dirtied since the last sync join the pending ones; the
    /// round before is closed with an end-of-iteration record (QEMU's RAM_SAVE_FLAG_EOS).
    private func sync(into pending: inout PendingPages) throws(MigrationFailure) {
        let dirty = try fetchDirty()
        pending.insert(dirty)
        unpopulated?.remove(dirty)
        let now = MonotonicClock.microseconds
        stats.dirtySyncCount += 1
        migration.pass(Int(stats.dirtySyncCount))
        stats.dirtyPagesRate = UInt64(Double(dirty.dirtyCount) * 1_000_000 / Double(max(now - lastSync, 1)))
        lastSync = now
        stats.remaining = pending.bytes
        encoder.record(.ramEndOfIteration, name: "ram")
        publish()
    }

    /// migration_completion: stop the VM, (pause-before-switchover), drain and inactivate the
    /// images and save the device state on the loop; send the rest, the state and the end;
    /// wait for the destination's verdict.
    private func switchOver(sending pending: inout PendingPages) throws(MigrationFailure) {
        // postcopy_start (bitmaps only: what is left to postcopy is their bits) says
        // postcopy-active before it stops the VM.
        let postcopy = migration.postcopyRequested && !bitmapStarts.isEmpty
        if postcopy { migration.onLoop(.postcopyActive) }
        // As QEMU's downtime_start, taken before vm_stop_force_state.
        stopTime = MonotonicClock.milliseconds
        let outcome = migration.pauseBeforeSwitchover ? try stopPausingBeforeSwitchover(postcopy: postcopy) : try stopAndSave()
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
        // ram_save_complete: the last sync, with the VM stopped and I/O drained.
        pending.insert(try fetchDirty())
        stats.dirtySyncCount += 1
        try sendPages(pending.takeAll(), throttled: false, inPlace: true)
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

    /// The stop and the save in one trip to the loop (each trip costs a thread wake-up, tens of µs
    /// of the downtime on these machines). global_state_store comes before the stop: the
    /// destination resumes in this state.
    private func stopAndSave() throws(MigrationFailure) -> SwitchoverOutcome {
        if migration.isCancelled { throw .cancelled }
        let (runState, stopped, outcome) = LoopBridge<(String, Bool, SwitchoverOutcome)>.run(on: machine, pollingForNanoseconds: Machine.switchoverPollNanoseconds) { machine, done in
            let runState = machine.runState.rawValue
            let stopped = machine.stopForMigration()
            Self.saveStopped(machine) { done((runState, stopped, $0)) }
        }
        (sourceRunState, undo.stoppedVM) = (runState, stopped)
        return outcome
    }

    /// pause-before-switchover: stop, say pre-switchover and wait for `migrate-continue`, then save.
    private func stopPausingBeforeSwitchover(postcopy: Bool) throws(MigrationFailure) -> SwitchoverOutcome {
        (sourceRunState, undo.stoppedVM) = LoopBridge<(String, Bool)>.call(on: machine) { machine in
            (machine.runState.rawValue, machine.stopForMigration())
        }
        migration.onLoop(.preSwitchover)
        try migration.waitForContinue()
        migration.onLoop(postcopy ? .postcopyActive : .device)
        if migration.isCancelled { throw .cancelled }
        return LoopBridge<SwitchoverOutcome>.run(on: machine) { machine, done in Self.saveStopped(machine, done) }
    }

    /// On the loop, the VM stopped: requests the guest published before it stopped complete first
    /// (blk_drain per device); a READY mirror (storage migration) copies the guest's last writes;
    /// then the images are inactivated and the device state saved.
    private static func saveStopped(_ machine: Machine, _ done: @escaping @Sendable (SwitchoverOutcome) -> Void) {
        do throws(MachineError) { try machine.drainDeviceRequests() } catch { return done(.failed(error.description, inactivated: false)) }
        machine.graph.jobs.whenMirrorsSynced {
            machine.graph.inactivateAll { result in
                if case .failure(let error) = result { return done(.failed("bdrv_inactivate_all() failed: \(error)", inactivated: false)) }
                do throws(MachineError) { done(.saved(try machine.saveState())) } catch { done(.failed(error.description, inactivated: true)) }
            }
        }
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

    private func fetchDirty() throws(MigrationFailure) -> DirtyPageBitmap {
        do { return try ram.fetchDirtyPages() } catch { throw .failed(error.description) }
    }

    /// `pages` in records of up to `pagesPerRecord` entries, each written out when full.
    ///
    /// While the guest runs, a data page is copied into the stash and checksummed there: the
    /// guest may write the page at any moment, and a checksum over guest RAM could then differ
    /// from the bytes the kernel copies into the socket a moment later, which the destination
    /// would refuse as corruption (the dirty log makes the page go again, but the record would
    /// already be refused). `inPlace`, with the VM stopped and I/O drained so that nothing
    /// writes guest RAM until the record is written, the page is checksummed and sent where it
    /// is (writev), as QEMU sends every page.
    private func sendPages(_ pages: [Int], throttled: Bool, inPlace: Bool = false) throws(MigrationFailure) {
        var inRecord = 0
        for page in pages {
            if inRecord == 0 { encoder.open(.ram, name: "ram") }
            let ram = self.ram
            let kind: RamPageKind
            do {
                // A zero page is seen in place (or not at all: never populated) and sent as a
                // marker without being copied.
                if try unpopulated?.contains(page) == true || ram.pageIsZero(page) {
                    encoder.zeroPage(UInt32(page))
                    kind = .zero
                } else if inPlace, case let bytes = try ram.page(page), bytes.count == MigrationStream.pageSize {
                    encoder.page(UInt32(page), inPlace: UnsafeRawBufferPointer(bytes))
                    kind = .data
                } else {
                    kind = try encoder.page(UInt32(page)) { room in try ram.readPage(page, into: room) }
                }
            } catch {
                throw .failed("\(error)")
            }
            if kind == .zero { stats.duplicate += 1 } else { stats.normal += 1 }
            inRecord += 1
            if inRecord == MigrationStream.pagesPerRecord {
                encoder.close()
                inRecord = 0
                try write(throttled: throttled)
            }
        }
        if inRecord > 0 {
            encoder.close()
            try write(throttled: throttled)
        }
    }

    private func write(throttled: Bool) throws(MigrationFailure) {
        if migration.isCancelled { throw .cancelled }
        guard let channel else { return }
        let count = UInt64(encoder.buffer.streamCount)
        do {
            try encoder.buffer.withSegments { segments throws(MigrationError) in try channel.writeAll(segments) }
        } catch {
            throw migration.isCancelled ? .cancelled : .failed(describeWriteFailure(error))
        }
        encoder.buffer.removeAll()
        // The destination may refuse before the stream ends: stop at once, saying why.
        if let line = channel.readLine(timeoutMilliseconds: 0) {
            if line.hasPrefix("ERR ") { throw .failed("the destination refused the stream: \(line.dropFirst(4))") }
            earlyVerdict = line
        }
        stats.transferred += count
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
