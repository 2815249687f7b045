/// A failure to build or run the machine, with the context the user needs.
public struct MachineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
