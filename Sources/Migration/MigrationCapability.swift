/// QEMU 7.2's MigrationCapability names, in QEMU's order (query-migrate-capabilities lists them
/// all). svmm implements `events`, `late-block-activate`, `pause-before-switchover` and
/// `dirty-bitmaps` (with migrate-start-postcopy moving the bitmaps after the switch-over); enabling
/// any other is refused rather than accepted and ignored.
public enum MigrationCapability: String, CaseIterable, Sendable {
    case xbzrle, rdmaPinAll = "rdma-pin-all", autoConverge = "auto-converge", zeroBlocks = "zero-blocks", compress, events
    case postcopyRam = "postcopy-ram", xColo = "x-colo", releaseRam = "release-ram", block, returnPath = "return-path"
    case pauseBeforeSwitchover = "pause-before-switchover", multifd, dirtyBitmaps = "dirty-bitmaps"
    case postcopyBlocktime = "postcopy-blocktime", lateBlockActivate = "late-block-activate", xIgnoreShared = "x-ignore-shared"
    case validateUuid = "validate-uuid", backgroundSnapshot = "background-snapshot", zeroCopySend = "zero-copy-send"
    case postcopyPreempt = "postcopy-preempt"

    public var isImplemented: Bool {
        switch self {
        case .events, .lateBlockActivate, .pauseBeforeSwitchover, .dirtyBitmaps: true
        default: false
        }
    }
}
