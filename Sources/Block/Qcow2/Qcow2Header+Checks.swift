import Glibc

extension Qcow2Header {
    /// Feature bits and encryption: what svmm cannot handle, refused with QEMU's words where it has them.
    func checkFeatures(_ extensions: Qcow2HeaderExtensions, writable: Bool, imageName: String?) throws(BlockError) {
        let known = Qcow2Layout.incompatDirty | Qcow2Layout.incompatCorrupt
        if compressionType != 0 || incompatibleFeatures & Qcow2Layout.incompatCompression != 0 {
            // QEMU supports zstd; svmm reads no compressed data at all.
            throw BlockError(extensions.unsupportedFeatures(Qcow2Layout.incompatCompression), errno: ENOTSUP)
        }
        if incompatibleFeatures & ~known != 0 {
            throw BlockError(extensions.unsupportedFeatures(incompatibleFeatures & ~known), errno: ENOTSUP)
        }
        if incompatibleFeatures & Qcow2Layout.incompatCorrupt != 0 && writable {
            throw BlockError("qcow2: Image is corrupt; cannot be opened read/write", errno: EACCES)
        }
        guard refcountOrder <= 6 else {
            throw BlockError("Reference count entry width too large; may not exceed 64 bits", errno: EINVAL)
        }
        if cryptMethod != 0 {
            let prefix = imageName.map { "Could not open '\($0)': " } ?? ""
            throw BlockError("\(prefix)qcow2 encryption is not supported (crypt_method \(cryptMethod)); decrypt the image with 'qemu-img convert'", errno: ENOTSUP)
        }
        try checkWritableState(extensions, writable: writable)
    }

    /// States QEMU repairs or keeps consistent on a read-write open, which svmm leaves to qemu-img.
    private func checkWritableState(_ extensions: Qcow2HeaderExtensions, writable: Bool) throws(BlockError) {
        guard writable else { return }
        if incompatibleFeatures & Qcow2Layout.incompatDirty != 0 {
            throw BlockError("qcow2: Image is dirty (lazy refcounts); repair it with 'qemu-img check -r all' before opening it read/write", errno: ENOTSUP)
        }
        if extensions.hasBitmaps && autoclearFeatures & Qcow2Layout.autoclearBitmaps != 0 {
            throw BlockError("qcow2: Image has persistent dirty bitmaps, which svmm cannot keep consistent; it can only be opened read-only", errno: ENOTSUP)
        }
    }

    /// Table offsets and sizes, as QEMU's qcow2_validate_table checks them.
    func checkTables() throws(BlockError) {
        guard refcountTableClusters > 0 else {
            throw BlockError("Image does not contain a reference count table", errno: EINVAL)
        }
        try checkTable(refcountTableOffset, entries: UInt64(refcountTableClusters), entrySize: UInt64(clusterSize),
                       maxBytes: Qcow2Layout.maxRefcountTableBytes, name: "Reference count table")
        try checkTable(snapshotsOffset, entries: UInt64(snapshotCount), entrySize: Qcow2Layout.snapshotHeaderBytes,
                       maxBytes: Qcow2Layout.snapshotHeaderBytes * Qcow2Layout.maxSnapshots, name: "Snapshot table")
        try checkTable(l1TableOffset, entries: UInt64(l1Size), entrySize: 8, maxBytes: Qcow2Layout.maxL1Bytes, name: "Active L1 table")
        guard requiredL1Size <= UInt64(Int32.max) else { throw BlockError("Image is too big", errno: EFBIG) }
        guard UInt64(l1Size) >= requiredL1Size else { throw BlockError("L1 table is too small", errno: EINVAL) }
    }

    private func checkTable(_ offset: UInt64, entries: UInt64, entrySize: UInt64, maxBytes: UInt64, name: String) throws(BlockError) {
        guard entries <= maxBytes / entrySize else { throw BlockError("\(name) too large", errno: EFBIG) }
        let bytes = entries * entrySize
        guard offset <= UInt64(Int64.max) - bytes, offset % UInt64(clusterSize) == 0 else {
            throw BlockError("\(name) offset invalid", errno: EINVAL)
        }
    }

    /// L1 entries needed to map `size` bytes: each maps an L2 table of clusterSize / 8 clusters.
    var requiredL1Size: UInt64 {
        let shift = UInt64(2 * clusterBits - 3)
        return (size >> shift) + (size & ((1 << shift) - 1) == 0 ? 0 : 1)
    }
}
