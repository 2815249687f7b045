/// What a request counts as in a BlockBackend's statistics (QEMU's enum BlockAcctType).
public enum BlockAcctType: Int, CaseIterable, Sendable {
    case read, write, flush, unmap
}
