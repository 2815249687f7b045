/// What the client expects next from the server.
enum ClientReceiveState {
    case replyHeader
    /// A chunk's payload after its 20-byte header.
    case chunk(handle: UInt64, flags: UInt16, type: UInt16, length: Int)
    /// Data going straight into a READ's vector (`incoming`); `done` ends the reply after it.
    case data(handle: UInt64, done: Bool)
    /// Payload to drop (chunk types we do not use).
    case skip(handle: UInt64, done: Bool, remaining: Int)
}
