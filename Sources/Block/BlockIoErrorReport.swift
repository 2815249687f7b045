/// What BLOCK_IO_ERROR says about a guest request that failed (send_qmp_error_event).
public struct BlockIoErrorReport: Sendable {
    /// The BlockBackend's name ("" for an anonymous one).
    public var device: String
    public var nodeName: String?
    /// `read` or `write` (IoOperationType).
    public var isRead: Bool
    public var action: JobErrorAction
    /// Present when the backend's device has an io-status (virtio-blk has).
    public var nospace: Bool?
    /// strerror's text for the errno.
    public var reason: String
}
