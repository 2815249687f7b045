import CKVM
import Glibc

/// KVM's dirty log on a RAM slot: which pages the guest wrote since the last fetch.
extension VirtualMachine {
    /// Turns KVM_MEM_LOG_DIRTY_PAGES on or off by registering `memory`'s slot again with the flag
    /// (KVM allows a flags-only change of a live slot). When turned on, the log starts empty.
    public func setDirtyLogging(_ memory: GuestMemory, slot: UInt32, enabled: Bool) throws(KvmError) {
        try mapMemory(memory, slot: slot, logDirtyPages: enabled)
    }

    /// KVM_GET_DIRTY_LOG: the pages of `slot` the guest dirtied since the last call, which this
    /// call clears (without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled, get and clear are one step).
    public func fetchDirtyLog(slot: UInt32, pageCount: Int) throws(KvmError) -> DirtyPageBitmap {
        var words = [UInt64](repeating: 0, count: max((pageCount + 63) / 64, 1))
        let result = words.withUnsafeMutableBytes { buffer in
            var log = kvm_dirty_log()
            log.slot = slot
            log.dirty_bitmap = buffer.baseAddress
            return ckvm_ioctl(fd, CKVM_GET_DIRTY_LOG, &log)
        }
        if result < 0 { throw KvmError("ioctl KVM_GET_DIRTY_LOG") }
        return DirtyPageBitmap(pageCount: pageCount, words: words)
    }
}
