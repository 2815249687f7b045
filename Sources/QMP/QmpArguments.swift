/// A command's `arguments`, checked as QAPI's input visitor checks them: every member is
/// known, present when required and of the declared type, before the command does anything.
public struct QmpArguments {
    public enum Kind: String {
        case string = "string", bool = "boolean", int = "integer", object = "object", array = "array", any = "any"
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
            guard Self.matches(value, member.kind) else {
                throw QmpError("Invalid parameter type for '\(key)', expected: \(member.kind.rawValue)")
            }
        }
    }

    private static func matches(_ value: JSONValue, _ kind: Kind) -> Bool {
        switch (kind, value) {
        case (.any, _), (.string, .string), (.bool, .bool), (.int, .int), (.object, .object), (.array, .array): true
        default: false
        }
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
}

extension QmpArguments.Member {
    static func required(_ name: String, _ kind: QmpArguments.Kind) -> Self { .init(name: name, kind: kind, required: true) }
    static func optional(_ name: String, _ kind: QmpArguments.Kind) -> Self { .init(name: name, kind: kind, required: false) }
}
