import Block

/// A QMP error reply: `{"error": {"class": ..., "desc": ...}}`.
public struct QmpError: Error, Equatable {
    /// QEMU's ErrorClass: the kind every layer's errors carry (Loop's ErrorKind).
    public typealias ErrorClass = ErrorKind

    public let errorClass: ErrorClass
    public let desc: String

    public init(_ desc: String, class errorClass: ErrorClass = .generic) {
        self.errorClass = errorClass
        self.desc = desc
    }

    /// A lower layer's error (block, machine, loop, sockets): its text, and the class its kind
    /// names, so a `Block job 'x' not found` deep in the block layer is still DeviceNotActive.
    public init(_ error: some KindedError) {
        self.init(error.description, class: error.kind)
    }

    var json: JSONValue {
        .object([("class", .string(errorClass.qmpClass)), ("desc", .string(desc))])
    }
}
