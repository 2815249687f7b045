/// What one `Socket.accept` on a non-blocking listener gave.
public enum SocketAcceptResult: Sendable, Equatable {
    case connection(Int32)
    /// No connection is waiting (or it vanished before it was taken).
    case none
    /// A connection waits, but the process has no descriptor for it: the listener stays readable,
    /// so its owner must stop watching it until a descriptor is free, or the loop spins.
    case outOfDescriptors
}
