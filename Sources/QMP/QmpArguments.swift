/// A command's `arguments`, checked as QAPI's input visitor checks them: every member is
/// known, present when required and of the declared type, before the command does anything.
public struct QmpArguments {
    public enum Kind {
        case string, bool, int, object, array, any
        /// An integer member QAPI declares uint32 (`max-connections`).
        case uint32
        /// An integer member QAPI declares uint64 or size (`max-bandwidth`): a negative one is
        /// taken as its two's complement, as QEMU's qobject_input_type_uint64 does "for backward
        /// compatibility"; anything else is "expects uint64".
        case uint64

        /// QAPI's name for the type, as "Invalid parameter type ... expected: <name>" uses it.
        var name: String {
            switch self {
            case .string: "string"
            case .bool: "boolean"
            case .int, .uint32, .uint64: "integer"
            case .object: "object"
            case .array: "array"
            case .any: "any"
            }
        }
    }

    public struct Member {
        let name: String
        let kind: Kind
        let required: Bool
    }

    public let values: JSONValue

    init(_ values: JSONValue, schema: [Member]?) throws(QmpError) {
        self.values = values
        guard let schema else { return }  // the command checks its own arguments (blockdev-add)
        guard case .object(let members) = values else { throw QmpError("QMP input member 'arguments' must be an object") }
        for member in schema where member.required && values[member.name] == nil {
            throw QmpError("Parameter '\(member.name)' is missing")
        }
        for (key, value) in members {
            guard let member = schema.first(where: { $0.name == key }) else { throw QmpError("Parameter '\(key)' is unexpected") }
            if member.kind == .uint64, Self.uint64(value) == nil { throw QmpError("Parameter '\(key)' expects uint64") }
            guard Self.matches(value, member.kind) else {
                throw QmpError("Invalid parameter type for '\(key)', expected: \(member.kind.name)")
            }
            // visit_type_uint32: an integer, but out of range (negative or above UINT32_MAX).
            if member.kind == .uint32, !Self.fitsUInt32(value) { throw QmpError("Parameter '\(key)' expects uint32_t") }
        }
    }

    private static func matches(_ value: JSONValue, _ kind: Kind) -> Bool {
        switch (kind, value) {
        case (.any, _), (.string, .string), (.bool, .bool), (.int, .int), (.object, .object), (.array, .array): true
        case (.uint32, .int), (.uint32, .uint), (.uint64, .int), (.uint64, .uint): true
        default: false
        }
    }

    private static func fitsUInt32(_ value: JSONValue) -> Bool {
        if case .int(let number) = value { return (0...Int64(UInt32.max)).contains(number) }
        return false
    }

    public func string(_ name: String) -> String? { values[name]?.stringValue }

    public func bool(_ name: String) -> Bool? {
        if case .bool(let flag)? = values[name] { return flag }
        return nil
    }

    public func int(_ name: String) -> Int64? {
        if case .int(let number)? = values[name] { return number }
        return nil
    }

    private static func uint64(_ value: JSONValue) -> UInt64? {
        switch value {
        case .int(let number): UInt64(bitPattern: number)
        case .uint(let number): number
        default: nil
        }
    }

    /// A `.uint64` member (a negative number wrapped, as QEMU's visitor does).
    public func uint64(_ name: String) -> UInt64? { values[name].flatMap(Self.uint64) }

    /// A `.uint32` member, already range-checked.
    public func uint32(_ name: String) -> UInt32? {
        if case .int(let number)? = values[name] { return UInt32(exactly: number) }
        return nil
    }
}

extension QmpArguments.Member {
    static func required(_ name: String, _ kind: QmpArguments.Kind) -> Self { .init(name: name, kind: kind, required: true) }
    static func optional(_ name: String, _ kind: QmpArguments.Kind) -> Self { .init(name: name, kind: kind, required: false) }
}
