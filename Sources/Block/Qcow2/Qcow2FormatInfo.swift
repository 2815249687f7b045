/// What `query-named-block-nodes` reports of a qcow2 image (QEMU's ImageInfoSpecificQCow2).
public struct Qcow2FormatInfo: Sendable {
    public let clusterSize: Int
    public let compat: String
    public let refcountBits: Int
    public let lazyRefcounts: Bool
    public let corrupt: Bool
}

extension Qcow2Driver {
    public var formatInfo: Qcow2FormatInfo {
        let header = metadata.header
        return Qcow2FormatInfo(
            clusterSize: header.clusterSize,
            compat: header.version >= 3 ? "1.1" : "0.10",
            refcountBits: 1 << Int(header.refcountOrder),
            lazyRefcounts: header.compatibleFeatures & 1 != 0,
            corrupt: header.incompatibleFeatures & 2 != 0)
    }
}
