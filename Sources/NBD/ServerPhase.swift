/// What a server connection expects next from its client.
enum ServerPhase {
    case clientFlags
    case optionHeader
    case optionData(option: UInt32, length: Int)
    case optionSkip(option: UInt32, remaining: Int)
    case requestHeader
    /// A WRITE's data is arriving into its buffer (`pendingWrite`).
    case writePayload
    /// Waiting for in-flight requests before closing (after NBD_CMD_DISC).
    case disconnecting
}
