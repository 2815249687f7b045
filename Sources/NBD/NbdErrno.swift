import Glibc

/// Error numbers on the wire (the protocol's, not the host's).
public enum NbdErrno {
    /// QEMU's system_errno_to_nbd_errno.
    public static func toWire(_ code: Int32) -> UInt32 {
        switch code {
        case 0: 0
        case EPERM, EROFS: 1
        case EIO: 5
        case ENOMEM: 12
        case EDQUOT, EFBIG, ENOSPC: 28
        case EOVERFLOW: 75
        case ENOTSUP: 95
        case ESHUTDOWN: 108
        default: 22
        }
    }

    /// QEMU's nbd_errno_to_system_errno.
    public static func fromWire(_ code: UInt32) -> Int32 {
        switch code {
        case 1: EPERM
        case 5: EIO
        case 12: ENOMEM
        case 28: ENOSPC
        case 75: EOVERFLOW
        case 95: ENOTSUP
        case 108: ESHUTDOWN
        default: EINVAL
        }
    }
}
