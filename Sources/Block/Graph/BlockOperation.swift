/// The operations op blockers guard (QEMU's BlockOpType, the ones svmm performs).
public enum BlockOperation: Hashable, Sendable {
    case externalSnapshot
    case driveDel
    case mirrorSource
    case mirrorTarget
    case commitTarget
    case stream
    case backupSource
    case backupTarget

    /// What a backing node still allows (bdrv_backing_attach): it can be committed into,
    /// streamed and backed up, nothing else.
    static let allowedOnBacking: Set<BlockOperation> = [.commitTarget, .stream, .backupSource, .backupTarget]
}
