/// An option tree as `-blockdev` (dotted keys, string values) or QMP `blockdev-add` (typed JSON) gives it.
public indirect enum OptionValue: Equatable, Sendable {
    case string(String)
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case object([String: OptionValue])
    case array([OptionValue])
    case null

    /// QAPI's name for the type, as "Invalid parameter type ... expected: <name>" uses it.
    var typeName: String {
        switch self {
        case .string: "string"
        case .bool: "boolean"
        case .int, .double: "number"
        case .object: "object"
        case .array: "array"
        case .null: "null"
        }
    }

    /// Builds a tree from QEMU's dotted command-line keys: `file.driver=file` → {file: {driver: file}}.
    public static func fromDottedKeys(_ pairs: [(key: String, value: String)]) throws(BlockError) -> [String: OptionValue] {
        var root: [String: OptionValue] = [:]
        for (key, value) in pairs {
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            // Building, reading and freeing the tree recurse once a level: a key of 60,000 dots
            // overflowed the stack. QMP's JSON stops at the same depth.
            if path.count > maxDepth {
                throw BlockError("Parameter '\(path[0])' is nested more than \(maxDepth) levels deep")
            }
            try insert(value, at: path[...], into: &root, fullKey: key)
        }
        return root
    }

    /// As deep as QEMU's JSON parser nests (MAX_NESTING).
    public static let maxDepth = 1024

    private static func insert(_ value: String, at path: ArraySlice<String>, into object: inout [String: OptionValue],
                               fullKey: String) throws(BlockError) {
        guard let first = path.first, !first.isEmpty else { throw BlockError("Invalid parameter '\(fullKey)'") }
        if path.count == 1 {
            if case .object = object[first] { throw BlockError("Parameter '\(fullKey)' used inconsistently") }
            object[first] = .string(value)
            return
        }
        var child: [String: OptionValue]
        switch object[first] {
        case nil: child = [:]
        case .object(let existing): child = existing
        default: throw BlockError("Parameter '\(fullKey)' used inconsistently")
        }
        try insert(value, at: path.dropFirst(), into: &child, fullKey: fullKey)
        object[first] = .object(child)
    }
}
