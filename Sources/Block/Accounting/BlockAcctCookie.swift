/// A request's accounting from its start to its end (QEMU's BlockAcctCookie): what it counts as,
/// its bytes and when it started. A device keeps one per request in flight.
public struct BlockAcctCookie: Sendable {
    public let type: BlockAcctType
    public let bytes: Int64
    let startNs: Int64
}
