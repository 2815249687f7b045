import Block

extension VirtioBlk {
    /// What QEMU's virtio-blk asks of its BlockBackend (blkconf_apply_backend_options): it reads
    /// consistently and writes unless the medium is read-only; it shares consistent reads,
    /// unchanged writes and resizing, and writes only with `share-rw=on`.
    public static func permissions(readOnly: Bool, shareRW: Bool) -> (perm: BlockPermission, shared: BlockPermission) {
        let perm: BlockPermission = readOnly ? [.consistentRead] : [.consistentRead, .write]
        var shared: BlockPermission = [.consistentRead, .writeUnchanged, .resize]
        if shareRW { shared.insert(.write) }
        return (perm, shared)
    }

    /// Attaches `backend` to a device named `deviceName` and requests the device's permissions.
    /// During an incoming migration they are only recorded (applied when the VM resumes).
    public static func claim(_ backend: BlockBackend, deviceName: String, shareRW: Bool, incomingMigration: Bool) throws(BlockError) {
        backend.attachDevice(deviceName, incomingMigration: incomingMigration)
        let (perm, shared) = permissions(readOnly: backend.isReadOnly, shareRW: shareRW)
        try backend.setPerm(perm, shared: shared)
    }
}
