/// Whether a parser got the bytes it asked for.
public enum ReadProgress: Sendable, Equatable {
    case ready
    /// Nothing more to read now; the event loop calls again.
    case waiting
    /// The peer went away (end of file or a socket error), with the reason.
    case closed(String)
}
