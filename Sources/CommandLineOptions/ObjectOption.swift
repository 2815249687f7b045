import Machine

/// `-object iothread,id=ID[,poll-max-ns=N][,poll-grow=N][,poll-shrink=N]`: the one QOM object
/// type svmm knows (IothreadConfig says what svmm does with it). Errors in QEMU 7.2's words.
enum ObjectOption {
    static let pollProperties = ["poll-max-ns", "poll-grow", "poll-shrink"]

    static func parse(_ argument: String, existing: [IothreadConfig]) throws(CommandLineError) -> IothreadConfig {
        let options = try OptionList(argument, impliedKey: "qom-type")
        let type = options.value("qom-type") ?? ""
        guard type == "iothread" else { throw CommandLineError("Parameter 'qom-type' does not accept value '\(type)'") }
        guard let id = options.value("id") else { throw CommandLineError("Parameter 'id' is missing") }
        try options.checkKeys(Set(["qom-type", "id"] + pollProperties)) { "Invalid parameter '\($0)'" }
        var iothread = IothreadConfig(id: id)
        for property in pollProperties {
            guard let text = options.value(property) else { continue }
            let value = try int64(text, property)
            // iothread_set_poll_param: checked when the property is set, printed without the option.
            guard value >= 0 else {
                throw CommandLineError("\(property) value must be in range [0, \(Int64.max)]", option: "")
            }
            switch property {
            case "poll-max-ns": iothread.pollMaxNanoseconds = value
            case "poll-grow": iothread.pollGrow = value
            default: iothread.pollShrink = value
            }
        }
        guard !existing.contains(where: { $0.id == id }) else {
            throw CommandLineError("Duplicate ID '\(id)' for object")
        }
        return iothread
    }

    /// The string visitor's int64 (qemu_strtoi64 with base 0: decimal, 0x hex, leading-0 octal).
    private static func int64(_ text: String, _ property: String) throws(CommandLineError) -> Int64 {
        let negative = text.hasPrefix("-")
        let digits = negative ? text.dropFirst() : Substring(text)
        let magnitude: UInt64?
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            magnitude = UInt64(digits.dropFirst(2), radix: 16)
        } else if digits.count > 1, digits.hasPrefix("0") {
            magnitude = UInt64(digits.dropFirst(), radix: 8)
        } else {
            magnitude = UInt64(digits, radix: 10)
        }
        guard let magnitude, !digits.isEmpty,
              let value = negative ? (magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil)
                                   : (magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil) else {
            throw CommandLineError("Parameter '\(property)' expects an int64 value")
        }
        return value
    }
}
