/// Reads typed fields out of an option object and rejects what is left over, with QAPI's
/// error texts. `fromCommandLine` accepts strings for numbers and booleans, as QEMU's keyval does.
struct OptionReader {
    private let values: [String: OptionValue]
    private let prefix: String
    private let fromCommandLine: Bool
    private var used: Set<String> = []

    init(_ values: [String: OptionValue], prefix: String = "", fromCommandLine: Bool) {
        self.values = values
        self.prefix = prefix
        self.fromCommandLine = fromCommandLine
    }

    func path(_ key: String) -> String { prefix + key }

    private func typeError(_ key: String, _ expected: String) -> BlockError {
        BlockError("Invalid parameter type for '\(path(key))', expected: \(expected)")
    }

    mutating func raw(_ key: String) -> OptionValue? {
        used.insert(key)
        return values[key]
    }

    mutating func string(_ key: String) throws(BlockError) -> String? {
        switch raw(key) {
        case nil: return nil
        case .string(let text): return text
        default: throw typeError(key, "string")
        }
    }

    mutating func requiredString(_ key: String) throws(BlockError) -> String {
        guard let value = try string(key) else { throw BlockError("Parameter '\(path(key))' is missing") }
        return value
    }

    mutating func bool(_ key: String) throws(BlockError) -> Bool? {
        switch raw(key) {
        case nil: return nil
        case .bool(let flag): return flag
        case .string(let text) where fromCommandLine:
            switch text {
            case "on", "yes", "true": return true
            case "off", "no", "false": return false
            default: throw BlockError("Parameter '\(path(key))' expects 'on' or 'off'")
            }
        default: throw typeError(key, "boolean")
        }
    }

    mutating func int(_ key: String) throws(BlockError) -> Int64? {
        switch raw(key) {
        case nil: return nil
        case .int(let number): return number
        case .string(let text) where fromCommandLine:
            guard let number = Self.integer(text) else { throw BlockError("Parameter '\(path(key))' expects integer") }
            return number
        default: throw typeError(key, "integer")
        }
    }

    /// One of `allowed`, or QAPI's "does not accept value".
    mutating func enumeration(_ key: String, _ allowed: [String]) throws(BlockError) -> String? {
        guard let text = try string(key) else { return nil }
        guard allowed.contains(text) else { throw BlockError("Parameter '\(path(key))' does not accept value '\(text)'") }
        return text
    }

    mutating func object(_ key: String) throws(BlockError) -> OptionReader? {
        switch raw(key) {
        case nil: return nil
        case .object(let fields): return OptionReader(fields, prefix: path(key) + ".", fromCommandLine: fromCommandLine)
        default: throw typeError(key, "object")
        }
    }

    /// Fails on the first key nobody asked for.
    func finish() throws(BlockError) {
        if let extra = values.keys.sorted().first(where: { !used.contains($0) }) {
            throw BlockError("Parameter '\(path(extra))' is unexpected")
        }
    }

    var allValues: [String: OptionValue] { values }
    var isCommandLine: Bool { fromCommandLine }
    var keyPrefix: String { prefix }

    /// A non-negative int64 as QEMU's QemuOpts size options take it (null-co's size, raw's
    /// offset and size): a negative value gets parse_option_size's words.
    mutating func nonNegativeInt(_ key: String) throws(BlockError) -> Int64? {
        guard let number = try int(key) else { return nil }
        if number < 0 { throw BlockError("Parameter '\(path(key))' expects a non-negative number below 2^64") }
        return number
    }

    /// qemu_strtoi64(text, NULL, 0) as keyval's input visitor uses it for an int member: an
    /// optional sign, then decimal, `0x` hex or leading-zero octal, all of the text, within
    /// int64. No size suffixes: QEMU answers `size=1G` with "expects integer" too.
    static func integer(_ text: String) -> Int64? {
        var digits = Substring(text.drop { $0 == " " || $0 == "\t" || $0 == "\n" })
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if digits.count > 1 && digits.hasPrefix("0") {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.first != "+", digits.first != "-", let magnitude = UInt64(digits, radix: radix) else { return nil }
        if negative {
            return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }
}
