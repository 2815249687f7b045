import Block

extension JSONValue {
    /// The option tree `BlockdevOptions` reads (typed, as QMP gives it).
    var optionValue: OptionValue {
        switch self {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .int(let number): .int(number)
        // No option svmm has is a uint64; QEMU's input visitor refuses one beyond INT64_MAX
        // for an int member with the same "expected: integer" a double gets.
        case .uint(let number): .double(Double(number))
        case .double(let number): .double(number)
        case .string(let text): .string(text)
        case .array(let items): .array(items.map(\.optionValue))
        case .object(let members): .object(Dictionary(members.map { ($0.0, $0.1.optionValue) }, uniquingKeysWith: { $1 }))
        }
    }
}
