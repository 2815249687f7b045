/// Constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md; QEMU's include/block/nbd.h).
public enum NbdProtocol {
    /// "NBDMAGIC", the first eight bytes the server sends.
    public static let initMagic: UInt64 = 0x4e42_444d_4147_4943
    /// "IHAVEOPT": newstyle negotiation, and the prefix of every client option.
    public static let optionMagic: UInt64 = 0x4948_4156_454F_5054
    public static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9
    public static let requestMagic: UInt32 = 0x2560_9513
    public static let simpleReplyMagic: UInt32 = 0x6744_6698
    public static let structuredReplyMagic: UInt32 = 0x668e_33ef

    /// Handshake flags (server) and client flags.
    public static let flagFixedNewstyle: UInt16 = 1
    public static let flagNoZeroes: UInt16 = 2
    public static let clientFlagFixedNewstyle: UInt32 = 1
    public static let clientFlagNoZeroes: UInt32 = 2

    /// NBD_MAX_BUFFER_SIZE: the largest payload (and option) QEMU accepts.
    public static let maxBufferSize = 32 << 20
    /// NBD_MAX_STRING_SIZE: export names, descriptions, context names.
    public static let maxStringSize = 4096
    /// QEMU's MAX_NBD_REQUESTS: requests in flight per client.
    public static let maxRequestsPerClient = 16
    /// The `base:allocation` meta context's id (QEMU's NBD_META_ID_BASE_ALLOCATION).
    public static let baseAllocationContextID: UInt32 = 0
    public static let baseAllocation = "base:allocation"
    /// The first `qemu:dirty-bitmap:NAME` context's id (NBD_META_ID_DIRTY_BITMAP, after QEMU's
    /// qemu:allocation-depth at 1); the export's i-th bitmap has this + i.
    public static let dirtyBitmapContextID: UInt32 = 2
    public static let dirtyBitmapPrefix = "qemu:dirty-bitmap:"
    /// `qemu:dirty-bitmap:` extent flag (NBD_STATE_DIRTY).
    public static let stateDirty: UInt32 = 1
    /// `base:allocation` extent flags.
    public static let stateHole: UInt32 = 1
    public static let stateZero: UInt32 = 2
    /// Structured reply chunk flag: the last chunk of a reply.
    public static let replyFlagDone: UInt16 = 1
    /// Export-name reply padding when NO_ZEROES was not negotiated.
    public static let exportNameZeroes = 124
    public static let defaultPort = "10809"
}
