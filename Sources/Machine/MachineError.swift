/// A failure to build or run the machine, with the context the user needs. One that comes from a
/// lower layer (KVM, the loop, the block layer) wraps it: the text reads `context: lower text`, as
/// before, and the kind and the error itself stay for the caller (QMP answers with its class).
public struct MachineError: KindedError {
    public let description: String
    public let kind: ErrorKind
    /// The lower error this one reports, when there is one.
    public let cause: (any KindedError)?

    public init(_ description: String, kind: ErrorKind = .generic) {
        self.description = description
        self.kind = kind
        cause = nil
    }

    /// `error` under `context` (`-blockdev driver=…: Could not open 'x': …`), or alone.
    public init(_ error: some KindedError, context: String? = nil) {
        description = context.map { "\($0): \(error.description)" } ?? error.description
        kind = error.kind
        cause = error
    }
}
