/// blockdev-mirror's and drive-mirror's job options (qapi BlockdevMirror / DriveMirror), after
/// QMP checked their types.
public struct MirrorOptions {
    public var jobID: String
    public var sync: MirrorSyncMode
    public var speed: Int64 = 0
    /// 0: the target's default bitmap granularity.
    public var granularity: Int64 = 0
    /// 0: QEMU's default (16 requests of 1 MiB).
    public var bufSize: Int64 = 0
    public var copyMode: MirrorCopyMode = .background
    public var onSourceError: JobErrorPolicy = .report
    public var onTargetError: JobErrorPolicy = .report
    public var filterNodeName: String?
    public var autoFinalize = true
    public var autoDismiss = true
    public var replaces: String?
    /// drive-mirror's `unmap`: zero ranges may be unmapped on the target (blockdev-mirror: always).
    public var unmap = true
    /// drive-mirror mode=absolute-paths: at completion the target's backing becomes this node.
    public var backingOnCompletion: BlockNode?

    public init(jobID: String, sync: MirrorSyncMode) {
        self.jobID = jobID
        self.sync = sync
    }
}
