/// What a client learned about its export during the handshake.
public struct NbdExportInfo: Equatable, Sendable {
    public var size: UInt64 = 0
    public var flags: NbdTransmissionFlags = []
    /// Structured replies were negotiated.
    public var structured = false
    public var minimumBlock: UInt32 = 1
    public var preferredBlock: UInt32 = 4096
    public var maximumBlock: UInt32 = UInt32(NbdProtocol.maxBufferSize)

    public init() {}

    /// The largest READ/WRITE payload to send.
    var maxPayload: Int {
        let maximum = maximumBlock == 0 ? NbdProtocol.maxBufferSize : Int(maximumBlock)
        return min(maximum, NbdProtocol.maxBufferSize)
    }
}
