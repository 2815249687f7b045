/// How a page travels in a `ram` record.
public enum RamPageKind: UInt8, Sendable {
    /// Every byte zero: no data follows (QEMU's RAM_SAVE_FLAG_ZERO).
    case zero = 0
    /// 4096 bytes of data follow.
    case data = 1
}
