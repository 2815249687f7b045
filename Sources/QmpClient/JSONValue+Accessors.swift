import QmpJSON

// Typed reads of a reply's members for clients. They live here, not in QmpJSON, so the monitor's
// own modules (which may grow accessors of their own) never see two of the same name.
extension JSONValue {
    /// An integer member as Int64 (a uint64 above INT64_MAX is nil: no client field here is one).
    public var intValue: Int64? {
        switch self {
        case .int(let number): number
        case .uint(let number): number <= UInt64(Int64.max) ? Int64(number) : nil
        default: nil
        }
    }

    /// A number member as Double, whichever way it was written (`mbps` is a double, `total` an integer).
    public var doubleValue: Double? {
        switch self {
        case .int(let number): Double(number)
        case .uint(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// Builds an object from literal pairs, keeping their order: `.members(["a": 1])` reads badly
    /// with a Dictionary, whose order is not kept.
    public static func members(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { ($0.key, $0.value) })
    }
}
