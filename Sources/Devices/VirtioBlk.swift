import Block
import Glibc
import KVM

/// virtio-blk (virtio 1.x, section 5.2): the guest device that owns a BlockBackend.
/// Requests are parsed from descriptor chains, validated, and sent to the backend; completions
/// write the status byte and return the chain. Runs on the event-loop thread.
public final class VirtioBlk: VirtioDevice {
    public static let queueSize: UInt16 = 128
    public static let sectorSize: UInt64 = 512
    /// QEMU's defaults for max-discard-sectors and max-write-zeroes-sectors.
    static let maxDiscardSectors: UInt32 = 0x3f_ffff

    public let backend: BlockBackend
    public let serial: String
    public let id: String?
    let memory: GuestMemory
    private weak var transport: VirtioTransportLink?
    private(set) var queue: Virtqueue?
    /// Bumped on reset so that completions of requests from before it touch nothing.
    private(set) var generation = 0
    /// Requests submitted and not yet completed. While there are some, the device looks at the
    /// avail ring whenever one completes, so the driver need not kick (fewer exits and wake-ups).
    var inFlight = 0
    private var processing = false
    /// While the loop busy-polls this queue (an iothread's poll-max-ns) the driver need not kick
    /// even with nothing in flight (QEMU's virtio_queue_host_notifier_aio_poll_begin).
    private var polled = false
    /// Finished requests, for the next ones (see `VirtioBlkPendingRequest`).
    private var freeRequests: [VirtioBlkPendingRequest] = []
    /// Requests that failed under a `stop` policy, in the order they failed: `cont` retries them
    /// (QEMU's s->rq; see VirtioBlk+ErrorPolicy.swift).
    var failedRequests: [VirtioBlkPendingRequest] = []
    /// QEMU's vdev->vm_running: while the VM is stopped the device takes no chain from the ring
    /// (the resume looks at it again; see VirtioBlk+RunState.swift).
    var vmRunning = true
    /// Who waits for the requests in flight to end (a `stop`'s drain).
    var idleWaiters: [() -> Void] = []

    public init(backend: BlockBackend, memory: GuestMemory, serial: String = "", id: String? = nil) {
        self.backend = backend
        self.memory = memory
        self.serial = serial
        self.id = id
    }

    public var deviceID: UInt32 { 2 }
    public var queueMaxSizes: [UInt16] { [Self.queueSize] }

    public var deviceFeatures: UInt64 {
        typealias F = VirtioBlkRequest.Feature
        var features = F.segmentMax | F.blockSize | F.flush | F.discard | F.writeZeroes
            | VirtioFeature.ringIndirectDescriptors | VirtioFeature.ringEventIndex
        if backend.isReadOnly { features |= F.readOnly }
        return features
    }

    public var capacitySectors: UInt64 { UInt64(backend.length) / Self.sectorSize }

    // MARK: config space (struct virtio_blk_config)

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        let bytes = configSpace()
        guard offset >= 0, size > 0, size <= 8, offset + size <= bytes.count else { return 0 }
        return bytes[offset..<offset + size].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {}

    private func configSpace() -> [UInt8] {
        var bytes: [UInt8] = []
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        put(capacitySectors)
        put(UInt32(0))                          // size_max (not offered)
        put(UInt32(Self.queueSize - 2))         // seg_max, as QEMU
        put(UInt32(0))                          // geometry
        put(UInt32(Self.sectorSize))            // blk_size
        put(UInt32(0))                          // physical_block_exp, alignment_offset, min_io_size
        put(UInt32(0))                          // opt_io_size
        put(UInt32(1 << 16))                    // writeback 0, unused, num_queues 1
        put(Self.maxDiscardSectors)             // max_discard_sectors
        put(UInt32(1))                          // max_discard_seg
        put(UInt32(1))                          // discard_sector_alignment
        put(Self.maxDiscardSectors)             // max_write_zeroes_sectors
        put(UInt32(1))                          // max_write_zeroes_seg
        put(UInt32(1))                          // write_zeroes_may_unmap
        return bytes
    }

    // MARK: lifecycle

    public func activate(features: UInt64, queues: [Virtqueue], transport: VirtioTransportLink) {
        self.transport = transport
        queue = queues.first
    }

    public func reset() {
        generation += 1
        inFlight = 0
        queue = nil
        dropFailedRequests()
        runIdleWaiters()
    }

    public func processQueue(_ index: Int) {
        guard let queue, !processing, vmRunning else { return }
        processing = true
        backend.plug()
        defer {
            backend.unplug()
            processing = false
        }
        do throws(VirtqueueError) {
            // An error's stop can come while a chain is handled: the rest wait for the VM to run.
            while vmRunning {
                while vmRunning, let chain = try queue.pop() {
                    try handle(chain)
                }
                if !vmRunning { break }
                // Kicks are only needed when nothing in flight will bring us back to the ring.
                let wanted = inFlight == 0 && !polled
                try queue.setNotification(enabled: wanted)
                if !wanted { break }
                if try !queue.hasAvailable() { break }
            }
        } catch {
            transport?.deviceError(error.description)
        }
    }

    // MARK: busy-polling (LoopPollGroup, through the transport)

    /// Whether the driver published chains not yet popped (for a poll step).
    public var hasAvailableRequests: Bool {
        guard let queue else { return false }
        return (try? queue.hasAvailable()) == true
    }

    /// Polling starts: kicks off until `endPolling`.
    public func beginPolling() {
        polled = true
        guard let queue, !processing else { return }
        try? queue.setNotification(enabled: false)
    }

    /// Polling stops before the loop blocks; the caller then processes the queue as for a kick
    /// (the transport's `notify`), which turns kicks back on if nothing is in flight and picks up
    /// what the driver published meanwhile (processQueue's re-check closes the race).
    public func endPolling() {
        polled = false
    }

    // MARK: requests

    private func handle(_ chain: DescriptorChain) throws(VirtqueueError) {
        let readable = chain.readableLength
        let writable = chain.writableLength
        guard readable >= VirtioBlkRequest.headerSize, writable >= 1 else {
            // QEMU treats this as a broken driver too.
            transport?.deviceError("virtio-blk missing headers")
            return
        }
        let header = GuestBuffers(memory: memory, segments: chain.readable, skip: 0, length: VirtioBlkRequest.headerSize)
        // struct virtio_blk_outhdr {le32 type; le32 ioprio; le64 sector}, copied without an array.
        var headerWords: (UInt64, UInt64) = (0, 0)
        let copied = withUnsafeMutableBytes(of: &headerWords) { try? header.copyOut(into: $0) }
        guard copied == 16 else {
            return transport?.deviceError("virtio-blk header unreadable") ?? ()
        }
        let kind = UInt32(truncatingIfNeeded: UInt64(littleEndian: headerWords.0))
        let sector = UInt64(littleEndian: headerWords.1)
        guard let statusAddress = statusByteAddress(chain) else {
            return transport?.deviceError("virtio-blk missing headers") ?? ()
        }
        let pending = freeRequests.popLast() ?? VirtioBlkPendingRequest()
        pending.start(device: self, head: chain.head, statusAddress: statusAddress, generation: generation)
        inFlight += 1
        let dataOut = GuestBuffers(memory: memory, segments: chain.readable, skip: VirtioBlkRequest.headerSize,
                                   length: readable - VirtioBlkRequest.headerSize)
        let dataIn = GuestBuffers(memory: memory, segments: chain.writable, skip: 0, length: writable - 1)
        pending.remember(kind: kind, sector: sector, dataOut: dataOut, dataIn: dataIn)
        dispatch(kind: kind, sector: sector, dataOut: dataOut, dataIn: dataIn, pending: pending)
    }

    func statusByteAddress(_ chain: DescriptorChain) -> UInt64? {
        guard let last = chain.writable.last(where: { $0.length > 0 }) else { return nil }
        return last.address + UInt64(last.length) - 1
    }

    func dispatch(kind: UInt32, sector: UInt64, dataOut: GuestBuffers, dataIn: GuestBuffers, pending: VirtioBlkPendingRequest) {
        switch VirtioBlkRequest.Kind(rawValue: kind) {
        case .read: transfer(sector: sector, buffers: dataIn, isWrite: false, pending: pending)
        case .write: transfer(sector: sector, buffers: dataOut, isWrite: true, pending: pending)
        case .flush:
            pending.accounts(backend.stats.start(bytes: 0, type: .flush))
            backend.flush(completion: pending.ioCompletion(bytesIn: 0))
        case .getID: getID(dataIn, pending)
        case .discard: discardOrZero(dataOut, isDiscard: true, pending)
        case .writeZeroes: discardOrZero(dataOut, isDiscard: false, pending)
        case nil: complete(pending, .unsupported, written: 0)
        }
    }

    /// Byte offset of `count` bytes at `sector`, if the range is sector-aligned and inside the disk.
    private func byteRange(sector: UInt64, bytes count: UInt64) -> Int64? {
        let capacity = capacitySectors
        guard count % Self.sectorSize == 0, sector < capacity else { return nil }
        guard count / Self.sectorSize <= capacity - sector else { return nil }
        return Int64(sector * Self.sectorSize)
    }

    private func transfer(sector: UInt64, buffers: GuestBuffers, isWrite: Bool, pending: VirtioBlkPendingRequest) {
        // The used element counts the bytes written, status byte included, in 32 bits: a chain
        // whose descriptors add up to more (they may overlap) fails instead.
        guard buffers.length < UInt64(UInt32.max),
              let offset = byteRange(sector: sector, bytes: buffers.length),
              let vector = try? buffers.ioVector() else {
            backend.stats.invalid(isWrite ? .write : .read)
            return complete(pending, .ioError, written: 0)
        }
        pending.accounts(backend.stats.start(bytes: Int64(buffers.length), type: isWrite ? .write : .read))
        if isWrite {
            backend.write(at: offset, from: vector, completion: pending.ioCompletion(bytesIn: 0))
        } else {
            pending.fills(buffers)  // marked for dirty tracking when the read completes
            backend.read(at: offset, into: vector, completion: pending.ioCompletion(bytesIn: UInt32(buffers.length)))
        }
    }

    private func getID(_ buffers: GuestBuffers, _ pending: VirtioBlkPendingRequest) {
        var id = Array(serial.utf8.prefix(VirtioBlkRequest.idBytes))
        let count = min(Int(buffers.length), VirtioBlkRequest.idBytes)
        id += [UInt8](repeating: 0, count: max(0, count - id.count))
        guard (try? buffers.copyIn(Array(id.prefix(count)))) != nil else {
            return complete(pending, .ioError, written: 0)
        }
        complete(pending, .ok, written: UInt32(count))
    }

    /// DISCARD and WRITE_ZEROES carry one 16-byte segment {sector, num_sectors, flags}. As in
    /// QEMU, a WRITE_ZEROES counts as a write in the statistics (refused: an invalid one) and a
    /// DISCARD counts nowhere.
    private func discardOrZero(_ buffers: GuestBuffers, isDiscard: Bool, _ pending: VirtioBlkPendingRequest) {
        let refuse = { [self] (status: VirtioBlkRequest.Status) in
            if !isDiscard { backend.stats.invalid(.write) }
            complete(pending, status, written: 0)
        }
        guard buffers.length >= 16, buffers.length / 16 == 1,
              let segment = try? buffers.copyOut(maximum: 16), segment.count == 16 else {
            return refuse(.unsupported)
        }
        let sector = segment.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        let sectors = segment.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        let flags = segment.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) }
        let unmap = flags & 1 != 0
        if flags & ~1 != 0 || (isDiscard && unmap) { return refuse(.unsupported) }
        guard sectors <= Self.maxDiscardSectors,
              let offset = byteRange(sector: sector, bytes: UInt64(sectors) * Self.sectorSize) else {
            return refuse(.ioError)
        }
        let length = Int64(sectors) * Int64(Self.sectorSize)
        if isDiscard {
            backend.discard(at: offset, length: length, completion: pending.ioCompletion(bytesIn: 0))
        } else {
            pending.accounts(backend.stats.start(bytes: length, type: .write))
            backend.writeZeroes(at: offset, length: length, mayUnmap: unmap, completion: pending.ioCompletion(bytesIn: 0))
        }
    }

    /// The block layer's answer to a request (through `VirtioBlkPendingRequest.ioCompletion`).
    func finish(_ pending: VirtioBlkPendingRequest, _ result: Result<Int, BlockError>) {
        pending.filledBuffers?.markWritten()  // the kernel wrote guest RAM: KVM's dirty log does not see that
        switch result {
        case .success:
            if let cookie = pending.accounting { backend.stats.done(cookie) }
            complete(pending, .ok, written: pending.bytesIn)
        case .failure(let error): handleError(pending, error)
        }
    }

    func complete(_ pending: VirtioBlkPendingRequest, _ status: VirtioBlkRequest.Status, written: UInt32) {
        let (head, statusAddress, requestGeneration) = (pending.head, pending.statusAddress, pending.generation)
        pending.finish()
        freeRequests.append(pending)
        guard requestGeneration == generation, let queue else { return }
        inFlight -= 1
        defer { if inFlight == 0 && !idleWaiters.isEmpty { runIdleWaiters() } }
        do {
            try memory.store(status.rawValue, at: statusAddress)
            try queue.pushUsed(head: head, length: written + 1)
            if try queue.needsNotification() { transport?.signalUsedBuffers() }
        } catch {
            return transport?.deviceError("\(error)") ?? ()
        }
        // Pick up what the driver published meanwhile (it was told not to kick), and turn
        // kicks back on once nothing is in flight.
        processQueue(0)
    }
}
