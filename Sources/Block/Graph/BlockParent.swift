/// Anything that can hold an edge to a node: another node, a BlockBackend, a block job.
public protocol BlockParent: AnyObject {
    /// How permission errors name this user, in QEMU 7.2's words:
    /// `block device 'vblk0'`, `an unnamed block device`, `node 'fmt'`, `mirror job 'job0'`.
    var parentDescription: String { get }
}
