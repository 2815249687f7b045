/// The requests an error stopped, in and out of the migration stream (QEMU's virtio_blk_save_device
/// and virtio_blk_load_device, which re-map each saved element on the destination). Every loaded
/// value is hostile input: counts, heads, segments inside RAM, the chain's shape as `handle`
/// requires it, the kind and, for reads and writes, the sector range inside this disk.
extension VirtioBlk {
    func savedRequest(_ pending: VirtioBlkPendingRequest) -> VirtioBlkFailedRequestState {
        let segments = Array(pending.dataOut?.segments ?? []) + Array(pending.dataIn?.segments ?? [])
        return VirtioBlkFailedRequestState(
            head: pending.head, kind: pending.kind, sector: pending.sector,
            segments: segments.map { .init(address: $0.address, length: $0.length, isWritable: $0.isWritable) })
    }

    /// Replaces the device's failed requests with the loaded ones (re-submitted when the VM runs).
    func restoreFailedRequests(_ saved: [VirtioBlkFailedRequestState]) throws(DeviceStateError) {
        guard saved.count <= Int(Self.queueSize) else {
            throw refuseRequest("rq", "\(saved.count) requests, more than the queue size \(Self.queueSize)")
        }
        var heads = Set<UInt16>()
        var restored: [VirtioBlkPendingRequest] = []
        for (index, request) in saved.enumerated() {
            guard heads.insert(request.head).inserted else {
                throw refuseRequest("rq[\(index)].head", "head \(request.head) is in the list twice")
            }
            restored.append(try restoredRequest(request, field: "rq[\(index)]"))
        }
        dropFailedRequests()
        failedRequests = restored
    }

    /// After the transport and its queue are in: failed requests need a live queue their heads fit.
    public func checkRestoredRequests() throws(DeviceStateError) {
        guard !failedRequests.isEmpty else { return }
        guard let queue else { throw refuseRequest("rq", "\(failedRequests.count) requests on a device the driver has not set up") }
        if let request = failedRequests.first(where: { $0.head >= queue.size }) {
            throw refuseRequest("rq", "head \(request.head) is outside the queue of size \(queue.size)")
        }
    }

    private func restoredRequest(_ saved: VirtioBlkFailedRequestState, field: String) throws(DeviceStateError) -> VirtioBlkPendingRequest {
        let chain = try checkedChain(saved, field: field)
        try checkKindAndRange(saved, chain, field: field)
        guard let statusAddress = statusByteAddress(chain) else { throw refuseRequest("\(field).segments", "no status byte") }
        let pending = VirtioBlkPendingRequest()
        pending.start(device: self, head: saved.head, statusAddress: statusAddress, generation: generation)
        let readable = chain.readableLength, writable = chain.writableLength
        pending.remember(kind: saved.kind, sector: saved.sector,
                         dataOut: GuestBuffers(memory: memory, segments: chain.readable, skip: VirtioBlkRequest.headerSize,
                                               length: readable - VirtioBlkRequest.headerSize),
                         dataIn: GuestBuffers(memory: memory, segments: chain.writable, skip: 0, length: writable - 1))
        return pending
    }

    /// The chain as Virtqueue.pop and `handle` accept one: segments inside RAM, readable before
    /// writable, a 16-byte header and a status byte, lengths a used element can count.
    private func checkedChain(_ saved: VirtioBlkFailedRequestState, field: String) throws(DeviceStateError) -> DescriptorChain {
        guard saved.head < Self.queueSize else {
            throw refuseRequest("\(field).head", "\(saved.head) is outside a queue of at most \(Self.queueSize)")
        }
        guard !saved.segments.isEmpty, saved.segments.count <= VirtioBlkFailedRequestState.maxSegments else {
            throw refuseRequest("\(field).segments", "\(saved.segments.count) segments (1 to \(VirtioBlkFailedRequestState.maxSegments))")
        }
        var seenWritable = false
        for (index, segment) in saved.segments.enumerated() {
            guard !seenWritable || segment.isWritable else {
                throw refuseRequest("\(field).segments[\(index)]", "a readable segment after a writable one")
            }
            seenWritable = seenWritable || segment.isWritable
            guard memory.contains(segment.address, length: UInt64(segment.length)) else {
                throw refuseRequest("\(field).segments[\(index)]",
                                    "0x\(String(segment.address, radix: 16)) (+\(segment.length)) is outside guest RAM")
            }
        }
        let chain = DescriptorChain(head: saved.head, segments: saved.segments.map {
            .init(address: $0.address, length: $0.length, isWritable: $0.isWritable)
        })
        guard chain.readableLength >= VirtioBlkRequest.headerSize, chain.writableLength >= 1,
              chain.readableLength < UInt64(UInt32.max), chain.writableLength < UInt64(UInt32.max) else {
            throw refuseRequest("\(field).segments", "\(chain.readableLength) readable and \(chain.writableLength) writable bytes: no request header or status byte")
        }
        return chain
    }

    /// Only the kinds that reach the block layer can fail; a read or write must lie inside the disk.
    private func checkKindAndRange(_ saved: VirtioBlkFailedRequestState, _ chain: DescriptorChain, field: String) throws(DeviceStateError) {
        let kind = VirtioBlkRequest.Kind(rawValue: saved.kind)
        guard let kind, kind != .getID else {
            throw refuseRequest("\(field).type", "\(saved.kind) is not a request the block layer fails")
        }
        guard kind == .read || kind == .write else { return }
        let bytes = kind == .read ? chain.writableLength - 1 : chain.readableLength - VirtioBlkRequest.headerSize
        let capacity = capacitySectors
        guard bytes % Self.sectorSize == 0, saved.sector < capacity, bytes / Self.sectorSize <= capacity - saved.sector else {
            throw refuseRequest("\(field).sector", "\(bytes) bytes at sector \(saved.sector) are not inside the disk of \(capacity) sectors")
        }
    }

    private func refuseRequest(_ field: String, _ problem: String) -> DeviceStateError {
        DeviceStateError(section: VirtioBlkState.sectionName, field: field, "virtio-blk \(stateName): \(problem)")
    }
}
