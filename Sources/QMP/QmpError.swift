import Block

/// A QMP error reply: `{"error": {"class": ..., "desc": ...}}`.
public struct QmpError: Error, Equatable {
    public enum ErrorClass: String, Sendable {
        case genericError = "GenericError"
        case commandNotFound = "CommandNotFound"
        case deviceNotActive = "DeviceNotActive"
        case deviceNotFound = "DeviceNotFound"
        case kvmMissingCap = "KVMMissingCap"
    }

    public let errorClass: ErrorClass
    public let desc: String

    public init(_ desc: String, class errorClass: ErrorClass = .genericError) {
        self.errorClass = errorClass
        self.desc = desc
    }

    public init(_ error: BlockError) {
        switch error.kind {
        case .generic: self.init(error.description)
        case .deviceNotActive: self.init(error.description, class: .deviceNotActive)
        }
    }

    /// A failed system call (the loop could not watch a socket): a generic error with its text.
    public init(_ error: SystemCallError) {
        self.init(error.description)
    }

    var json: JSONValue {
        .object([("class", .string(errorClass.rawValue)), ("desc", .string(desc))])
    }
}
