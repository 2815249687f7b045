/// Constants of the qcow2 on-disk format (QEMU's docs/interop/qcow2.txt).
enum Qcow2Layout {
    static let magic: UInt32 = 0x5146_49fb  // "QFI\xfb"
    /// Bits 9-55 of an L1 or standard L2 entry: the host offset of the table or cluster.
    static let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    /// Bits 9-63 of a refcount table entry.
    static let refcountBlockMask: UInt64 = 0xffff_ffff_ffff_fe00
    /// Set in L1/L2 entries whose cluster has refcount exactly one, so it may be written in place.
    static let copiedFlag: UInt64 = 1 << 63
    static let compressedFlag: UInt64 = 1 << 62
    /// L2 entry bit 0 (version 3): the cluster reads as zeroes.
    static let zeroFlag: UInt64 = 1

    static let minClusterBits: UInt32 = 9
    static let maxClusterBits: UInt32 = 21
    static let v2HeaderLength: UInt32 = 72
    static let v3HeaderLength: UInt32 = 112

    static let incompatDirty: UInt64 = 1 << 0
    static let incompatCorrupt: UInt64 = 1 << 1
    static let incompatDataFile: UInt64 = 1 << 2
    static let incompatCompression: UInt64 = 1 << 3
    static let incompatExtendedL2: UInt64 = 1 << 4
    static let autoclearBitmaps: UInt64 = 1 << 0

    static let extensionEnd: UInt32 = 0
    static let extensionBackingFormat: UInt32 = 0xe279_2aca
    static let extensionFeatureTable: UInt32 = 0x6803_f857
    static let extensionBitmaps: UInt32 = 0x2385_2875
    static let extensionCrypto: UInt32 = 0x0537_be77
    static let extensionDataFile: UInt32 = 0x4441_5441

    /// Byte offsets of header fields svmm rewrites in place.
    static let sizeFieldOffset: Int64 = 24
    static let refcountTableFieldOffset: Int64 = 48
    static let incompatibleFieldOffset: Int64 = 72
    static let autoclearFieldOffset: Int64 = 88

    /// QEMU's limits (QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, QCOW_MAX_SNAPSHOTS).
    static let maxL1Bytes: UInt64 = 32 << 20
    static let maxRefcountTableBytes: UInt64 = 8 << 20
    static let maxSnapshots: UInt64 = 65536
    static let snapshotHeaderBytes: UInt64 = 40
    /// A backing format name must fit QEMU's 16-byte field, terminator included.
    static let maxBackingFormatLength = 15
    static let maxBackingFileLength = 1023
    /// QEMU's QCOW_MAX_CLUSTER_OFFSET: no host cluster may start beyond 2^56 - 1.
    static let maxClusterOffset: Int64 = (1 << 56) - 1
}
