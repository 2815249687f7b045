/// A failure to build or run the machine, with the context the user needs.
public struct MachineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
    /// The loop or a thread could not be set up: the system call and its errno.
    public init(_ error: SystemCallError) { self.init(error.description) }
}
