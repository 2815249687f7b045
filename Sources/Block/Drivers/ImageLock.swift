import CKVM
import Glibc

/// QEMU's image locking (file-posix): one OFD byte-range lock per permission, so QEMU, qemu-img
/// and svmm processes see each other. Byte 100+i is read-locked while permission i is taken,
/// byte 200+i while permission i is *not* shared.
struct ImageLock {
    static let permissionBase: Int64 = 100
    static let sharedBase: Int64 = 200

    let fd: Int32
    let filename: String

    /// Fails when another process holds a lock that forbids taking `perm` or refusing `shared`.
    func check(perm: BlockPermission, shared: BlockPermission) throws(BlockError) {
        for (permission, bit) in BlockPermission.bits {
            if perm.contains(permission), isLockedByOthers(Self.sharedBase + Int64(bit)) {
                throw lockError("Failed to get \"\(permission.messageNames)\" lock")
            }
            if !shared.contains(permission), isLockedByOthers(Self.permissionBase + Int64(bit)) {
                throw lockError("Failed to get shared \"\(permission.messageNames)\" lock")
            }
        }
    }

    /// Holds exactly the lock bytes that `perm`/`shared` call for.
    func apply(perm: BlockPermission, shared: BlockPermission) {
        for (permission, bit) in BlockPermission.bits {
            setLock(Self.permissionBase + Int64(bit), held: perm.contains(permission))
            setLock(Self.sharedBase + Int64(bit), held: !shared.contains(permission))
        }
    }

    private func lockError(_ message: String) -> BlockError {
        BlockError("\(message)\nIs another process using the image [\(filename)]?", errno: EAGAIN)
    }

    /// Our own OFD locks on this descriptor never conflict with themselves, so a test for an
    /// exclusive lock finds exactly the other processes' shared locks.
    private func isLockedByOthers(_ byte: Int64) -> Bool {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(byte)
        lock.l_len = 1
        guard ckvm_fcntl_lock(fd, CKVM_F_OFD_GETLK, &lock) == 0 else { return false }
        return lock.l_type != Int16(F_UNLCK)
    }

    private func setLock(_ byte: Int64, held: Bool) {
        var lock = flock()
        lock.l_type = Int16(held ? F_RDLCK : F_UNLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(byte)
        lock.l_len = 1
        _ = ckvm_fcntl_lock(fd, CKVM_F_OFD_SETLK, &lock)
    }
}
