/// One reason an operation is refused on a node (QEMU's BdrvOpBlocker): `Node 'X' is busy: <reason>`.
public struct BlockOpBlocker {
    /// The operations this blocker does not refuse.
    public let allowed: Set<BlockOperation>
    public let reason: String
    /// Who set it (the overlay of a backing node, a job), so it can be lifted again.
    let owner: ObjectIdentifier

    func blocks(_ operation: BlockOperation) -> Bool { !allowed.contains(operation) }
}
