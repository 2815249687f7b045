import Glibc

/// The fixed qcow2 header, parsed and checked in the order QEMU's qcow2_do_open checks it.
struct Qcow2Header: Equatable {
    var version: UInt32 = 3
    var backingFileOffset: UInt64 = 0
    var backingFileSize: UInt32 = 0
    var clusterBits: UInt32 = 16
    var size: UInt64 = 0
    var cryptMethod: UInt32 = 0
    var l1Size: UInt32 = 0
    var l1TableOffset: UInt64 = 0
    var refcountTableOffset: UInt64 = 0
    var refcountTableClusters: UInt32 = 0
    var snapshotCount: UInt32 = 0
    var snapshotsOffset: UInt64 = 0
    var incompatibleFeatures: UInt64 = 0
    var compatibleFeatures: UInt64 = 0
    var autoclearFeatures: UInt64 = 0
    var refcountOrder: UInt32 = 4
    var headerLength: UInt32 = Qcow2Layout.v3HeaderLength
    var compressionType: UInt8 = 0

    var clusterSize: Int { 1 << Int(clusterBits) }

    init() {}

    /// Parses the first 112 bytes of an image.
    init(parsing bytes: [UInt8]) throws(BlockError) {
        guard Qcow2Bytes.uint32(bytes, at: 0) == Qcow2Layout.magic else {
            throw BlockError("Image is not in qcow2 format", errno: EINVAL)
        }
        version = Qcow2Bytes.uint32(bytes, at: 4)
        guard version == 2 || version == 3 else {
            throw BlockError("Unsupported qcow2 version \(version)", errno: ENOTSUP)
        }
        parseCommonFields(bytes)
        guard (Qcow2Layout.minClusterBits...Qcow2Layout.maxClusterBits).contains(clusterBits) else {
            throw BlockError("Unsupported cluster size: 2^\(clusterBits)", errno: EINVAL)
        }
        if version == 3 { try parseVersion3Fields(bytes) } else { headerLength = Qcow2Layout.v2HeaderLength }
        guard Int(headerLength) <= clusterSize else { throw BlockError("qcow2 header exceeds cluster size", errno: EINVAL) }
        guard backingFileOffset <= UInt64(clusterSize) else { throw BlockError("Invalid backing file offset", errno: EINVAL) }
    }

    private mutating func parseCommonFields(_ bytes: [UInt8]) {
        backingFileOffset = Qcow2Bytes.uint64(bytes, at: 8)
        backingFileSize = Qcow2Bytes.uint32(bytes, at: 16)
        clusterBits = Qcow2Bytes.uint32(bytes, at: 20)
        size = Qcow2Bytes.uint64(bytes, at: 24)
        cryptMethod = Qcow2Bytes.uint32(bytes, at: 32)
        l1Size = Qcow2Bytes.uint32(bytes, at: 36)
        l1TableOffset = Qcow2Bytes.uint64(bytes, at: 40)
        refcountTableOffset = Qcow2Bytes.uint64(bytes, at: 48)
        refcountTableClusters = Qcow2Bytes.uint32(bytes, at: 56)
        snapshotCount = Qcow2Bytes.uint32(bytes, at: 60)
        snapshotsOffset = Qcow2Bytes.uint64(bytes, at: 64)
    }

    private mutating func parseVersion3Fields(_ bytes: [UInt8]) throws(BlockError) {
        incompatibleFeatures = Qcow2Bytes.uint64(bytes, at: 72)
        compatibleFeatures = Qcow2Bytes.uint64(bytes, at: 80)
        autoclearFeatures = Qcow2Bytes.uint64(bytes, at: 88)
        refcountOrder = Qcow2Bytes.uint32(bytes, at: 96)
        headerLength = Qcow2Bytes.uint32(bytes, at: 100)
        guard headerLength >= 104 else { throw BlockError("qcow2 header too short", errno: EINVAL) }
        // Images from before the compression type field can only use zlib.
        compressionType = headerLength > 104 ? bytes[104] : 0
    }

    /// The version 3 header as `qemu-img create` writes it (112 bytes).
    func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(Qcow2Layout.v3HeaderLength))
        Qcow2Bytes.put(Qcow2Layout.magic, into: &bytes, at: 0)
        Qcow2Bytes.put(version, into: &bytes, at: 4)
        Qcow2Bytes.put(backingFileOffset, into: &bytes, at: 8)
        Qcow2Bytes.put(backingFileSize, into: &bytes, at: 16)
        Qcow2Bytes.put(clusterBits, into: &bytes, at: 20)
        Qcow2Bytes.put(size, into: &bytes, at: 24)
        Qcow2Bytes.put(cryptMethod, into: &bytes, at: 32)
        Qcow2Bytes.put(l1Size, into: &bytes, at: 36)
        Qcow2Bytes.put(l1TableOffset, into: &bytes, at: 40)
        Qcow2Bytes.put(refcountTableOffset, into: &bytes, at: 48)
        Qcow2Bytes.put(refcountTableClusters, into: &bytes, at: 56)
        Qcow2Bytes.put(snapshotCount, into: &bytes, at: 60)
        Qcow2Bytes.put(snapshotsOffset, into: &bytes, at: 64)
        Qcow2Bytes.put(incompatibleFeatures, into: &bytes, at: 72)
        Qcow2Bytes.put(compatibleFeatures, into: &bytes, at: 80)
        Qcow2Bytes.put(autoclearFeatures, into: &bytes, at: 88)
        Qcow2Bytes.put(refcountOrder, into: &bytes, at: 96)
        Qcow2Bytes.put(headerLength, into: &bytes, at: 100)
        bytes[104] = compressionType
        return bytes
    }
}
