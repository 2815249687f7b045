import Glibc

extension Qcow2Driver {
    /// Image creation as `qemu-img create -f qcow2 [-b backing -F fmt]` does it: version 3, 16-bit
    /// refcounts, the header, refcount table, first refcount block and L1 table in clusters 0-3.
    public static func create(on file: SyncBlockIO, size: Int64, clusterSize: Int = 65536,
                              backingFile: String? = nil, backingFormat: String? = nil) throws(BlockError) {
        guard clusterSize.nonzeroBitCount == 1, (512...(2 << 20)).contains(clusterSize) else {
            throw BlockError("Cluster size must be a power of two between 512 and 2048k", errno: EINVAL)
        }
        guard size >= 0, size <= Int64.max - 511 else {
            throw BlockError("Invalid image size specified. Must be between 0 and 9223372036854775807.", errno: EINVAL)
        }
        var header = Qcow2Header()
        header.clusterBits = UInt32(clusterSize.trailingZeroBitCount)
        header.refcountTableOffset = UInt64(clusterSize)
        header.refcountTableClusters = 1
        let backingName = backingFile.flatMap { $0.isEmpty ? nil : $0 }
        let headerCluster = try headerCluster(&header, backingFile: backingName, backingFormat: backingName == nil ? nil : backingFormat)
        try file.truncateSync(to: 0)
        try file.writeSync(headerCluster, at: 0)
        try file.writeSync(initialRefcounts(clusterSize: clusterSize), at: Int64(clusterSize))
        // QEMU too creates an empty image first, then grows it to its size.
        let metadata = try Qcow2Metadata(file: file, fileLength: Int64(3 * clusterSize), writable: true, imageName: nil)
        try allocateL1(metadata, size: (size + 511) / 512 * 512)
    }

    /// Header, extensions and backing file name: one cluster.
    private static func headerCluster(_ header: inout Qcow2Header, backingFile: String?,
                                      backingFormat: String?) throws(BlockError) -> [UInt8] {
        let name = Array((backingFile ?? "").utf8)
        guard name.count <= Qcow2Layout.maxBackingFileLength else { throw BlockError("Backing file name too long", errno: EINVAL) }
        guard (backingFormat?.utf8.count ?? 0) <= Qcow2Layout.maxBackingFormatLength else {
            throw BlockError("Backing format name too long", errno: EINVAL)
        }
        let headerLength = Int(Qcow2Layout.v3HeaderLength)
        // As QEMU: the 392-byte feature table would leave small clusters almost no room for a
        // backing file name, so it is left out for clusters of 4 KiB and less.
        let extensions = Qcow2HeaderExtensions.encoded(backingFormat: backingFormat, featureTable: header.clusterSize > 4096)
        guard headerLength + extensions.count + name.count <= header.clusterSize else {
            throw BlockError("Backing file name too long", errno: EINVAL)
        }
        if backingFile != nil {
            header.backingFileOffset = UInt64(headerLength + extensions.count)
            header.backingFileSize = UInt32(name.count)
        }
        let bytes = header.encoded() + extensions + name
        return bytes + [UInt8](repeating: 0, count: header.clusterSize - bytes.count)
    }

    /// Cluster 1, the refcount table (one entry: the block in cluster 2), and cluster 2, counting
    /// clusters 0-2.
    private static func initialRefcounts(clusterSize: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 2 * clusterSize)
        Qcow2Bytes.put(UInt64(2 * clusterSize), into: &bytes, at: 0)
        for cluster in 0..<3 { bytes[clusterSize + 2 * cluster + 1] = 1 }
        return bytes
    }

    /// Allocates and zeroes the L1 table for `size`, then points the header at it.
    private static func allocateL1(_ metadata: Qcow2Metadata, size: Int64) throws(BlockError) {
        var header = metadata.header
        header.size = UInt64(size)
        header.l1Size = UInt32(clamping: header.requiredL1Size)
        try header.checkTables()
        var l1Offset: Int64 = 0
        let bytes = Int(header.l1Size) * 8
        if bytes > 0 {
            l1Offset = try metadata.refcounts.allocate(count: (bytes + header.clusterSize - 1) / header.clusterSize).offset
            try metadata.file.writeSync([UInt8](repeating: 0, count: bytes), at: l1Offset)
        }
        try metadata.refcounts.writeBack()
        var fields = [UInt8](repeating: 0, count: 24)  // size, crypt_method, l1_size, l1_table_offset
        Qcow2Bytes.put(UInt64(size), into: &fields, at: 0)
        Qcow2Bytes.put(header.l1Size, into: &fields, at: 12)
        Qcow2Bytes.put(UInt64(l1Offset), into: &fields, at: 16)
        try metadata.file.writeSync(fields, at: Qcow2Layout.sizeFieldOffset)
        try metadata.file.flushSync()
    }
}
