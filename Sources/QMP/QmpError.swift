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

    var json: JSONValue {
        .object([("class", .string(errorClass.rawValue)), ("desc", .string(desc))])
    }
}
