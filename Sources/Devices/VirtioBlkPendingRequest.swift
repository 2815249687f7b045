import Block

/// A request the device has popped and not yet completed: what `VirtioBlk` needs to complete it
/// (the chain's head, the status byte, the reset generation it belongs to, the bytes a read
/// returns). The device reuses finished ones, and the block layer gets a closure that captures
/// only this object (Swift passes such a closure without allocating), so a request allocates
/// nothing. A free one holds no references.
final class VirtioBlkPendingRequest {
    private var device: VirtioBlk?
    private(set) var head: UInt16 = 0
    private(set) var statusAddress: UInt64 = 0
    private(set) var generation = 0
    /// What the used element reports as written (before the status byte) when the I/O succeeds.
    private(set) var bytesIn: UInt32 = 0
    /// The guest buffers a read fills, marked as VMM writes when it completes (dirty tracking).
    private(set) var filledBuffers: GuestBuffers?
    /// The request as the driver made it, to run it again after an error stopped the VM.
    private(set) var kind: UInt32 = 0
    private(set) var sector: UInt64 = 0
    private(set) var dataOut: GuestBuffers?
    private(set) var dataIn: GuestBuffers?
    /// The request's accounting in the backend's statistics (none for GET_ID and DISCARD).
    private(set) var accounting: BlockAcctCookie?

    func start(device: VirtioBlk, head: UInt16, statusAddress: UInt64, generation: Int) {
        self.device = device
        self.head = head
        self.statusAddress = statusAddress
        self.generation = generation
        bytesIn = 0
        filledBuffers = nil
        accounting = nil
    }

    func fills(_ buffers: GuestBuffers) { filledBuffers = buffers }

    func remember(kind: UInt32, sector: UInt64, dataOut: GuestBuffers, dataIn: GuestBuffers) {
        self.kind = kind
        self.sector = sector
        self.dataOut = dataOut
        self.dataIn = dataIn
    }

    /// virtio_blk_handle_rw_error's is_read: only IN requests are reads (rerror); the rest, flush
    /// and discard included, are writes (werror).
    var isRead: Bool { VirtioBlkRequest.Kind(rawValue: kind) == .read }
    func accounts(_ cookie: BlockAcctCookie) { accounting = cookie }

    /// Ends the request's life as pending (the device keeps it for the next one).
    func finish() {
        device = nil
        filledBuffers = nil
        dataOut = nil
        dataIn = nil
        accounting = nil
    }

    /// The completion to give the block layer for a request that writes `bytesIn` bytes into
    /// the guest's buffers when it succeeds.
    func ioCompletion(bytesIn: UInt32) -> IoCompletion {
        self.bytesIn = bytesIn
        return { [self] result in
            guard let device else { preconditionFailure("a virtio-blk request completed twice") }
            device.finish(self, result)
        }
    }
}
