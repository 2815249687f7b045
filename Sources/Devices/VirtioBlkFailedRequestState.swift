/// One request a `stop`/`enospc` error policy keeps for the VM's resume, as the migration stream
/// carries it (QEMU's virtio_blk_save_device puts each of its s->rq as the VirtQueueElement: head
/// and buffers). The kind and sector are the ones the source failed on; the buffers are the chain's
/// segments in order, readable first, each re-checked against this side's RAM and disk on load.
public struct VirtioBlkFailedRequestState: Sendable, Equatable {
    public struct Segment: Sendable, Equatable {
        public var address: UInt64
        public var length: UInt32
        public var isWritable: Bool

        public init(address: UInt64, length: UInt32, isWritable: Bool) {
            self.address = address
            self.length = length
            self.isWritable = isWritable
        }
    }

    /// A chain has at most one indirect table of 65536 descriptors (Virtqueue's own limit).
    public static let maxSegments = 0x10000

    public var head: UInt16
    public var kind: UInt32
    public var sector: UInt64
    public var segments: [Segment]

    public init(head: UInt16, kind: UInt32, sector: UInt64, segments: [Segment]) {
        self.head = head
        self.kind = kind
        self.sector = sector
        self.segments = segments
    }
}
