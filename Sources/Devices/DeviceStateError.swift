import Loop

/// A device state that cannot be saved (requests still in flight) or a loaded value refused as
/// hostile input, naming the section and the field: `virtqueue: field 'size': 100 is not a power of 2 up to 128`.
public struct DeviceStateError: KindedError, Equatable {
    public let section: String
    public let field: String
    public let problem: String
    public var kind: ErrorKind { .generic }

    public init(section: String, field: String, _ problem: String) {
        self.section = section
        self.field = field
        self.problem = problem
    }

    public var description: String { "\(section): field '\(field)': \(problem)" }
}
