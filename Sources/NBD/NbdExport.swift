import Block

/// One export of an NbdServer: a BlockBackend the caller created (QEMU's blk_exp_add: consistent
/// read, write if writable, sharing everything), under a name clients ask for.
public final class NbdExport {
    public let name: String
    public let backend: BlockBackend
    public let writable: Bool
    public let description: String?
    /// QEMU exports whole sectors: the backend's length rounded down to 512 at creation.
    public let size: UInt64
    /// Flags sent to clients (SEND_DF is added per client when it negotiated structured replies).
    public internal(set) var transmissionFlags: NbdTransmissionFlags = []
    /// The dirty bitmaps offered as `qemu:dirty-bitmap:NAME`, busy while the export lives.
    public internal(set) var bitmaps: [BdrvDirtyBitmap] = []
    /// Set once the export is removed: it takes no new clients.
    public internal(set) var isRemoved = false
    /// Requests issued on the backend and not completed yet, over all clients.
    public private(set) var pendingRequests = 0
    /// Called once, after removal, when no request is left in flight.
    var whenIdle: (() -> Void)?

    public init(name: String, backend: BlockBackend, writable: Bool, description: String? = nil) {
        self.name = name
        self.backend = backend
        self.writable = writable && !backend.isReadOnly
        self.description = description
        self.size = UInt64(max(backend.length, 0)) & ~511
    }

    /// What QEMU's nbd_export_create advertises.
    func computeFlags(multiConn: Bool) -> NbdTransmissionFlags {
        var flags: NbdTransmissionFlags = [.hasFlags, .sendFlush, .sendFUA, .sendCache]
        if multiConn { flags.insert(.canMultiConn) }
        flags.formUnion(writable ? [.sendTrim, .sendWriteZeroes, .sendFastZero] : [.readOnly])
        return flags
    }

    func requestStarted() { pendingRequests += 1 }

    func requestFinished() {
        pendingRequests -= 1
        if pendingRequests == 0, let whenIdle {
            self.whenIdle = nil
            whenIdle()
        }
    }
}
