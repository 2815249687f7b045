/// What a qcow2 image reports when svmm finds its metadata inconsistent: the data of QEMU's
/// BLOCK_IMAGE_CORRUPTED event, less `device` and `node-name`, which the graph knows and the
/// image does not (QEMU's qcow2_signal_corruption).
public struct Qcow2CorruptionReport: Sendable, Equatable {
    /// QEMU's `msg`, e.g. "Preventing invalid write on metadata (overlaps with qcow2_header)".
    public let message: String
    /// The host offset and length of the refused access, where there is one.
    public let offset: Int64?
    public let size: Int64?
    /// The image is marked corrupt and takes no more writes (false for a read-only image, where
    /// the request only fails).
    public let fatal: Bool

    public init(message: String, offset: Int64? = nil, size: Int64? = nil, fatal: Bool) {
        self.message = message
        self.offset = offset
        self.size = size
        self.fatal = fatal
    }
}
