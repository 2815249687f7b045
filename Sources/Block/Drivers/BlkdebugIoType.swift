/// QEMU 7.2's BlkdebugIOType: which requests an inject-error rule fails.
public enum BlkdebugIoType: String, CaseIterable, Sendable {
    case read, write, writeZeroes = "write-zeroes", discard, flush, blockStatus = "block-status"

    /// An inject-error rule without `iotype` fails every type but block-status (add_rule's default).
    public static let defaultMask: Set<BlkdebugIoType> = [.read, .write, .writeZeroes, .discard, .flush]
}
