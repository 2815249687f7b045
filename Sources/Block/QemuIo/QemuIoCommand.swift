/// One qemu-io command line, parsed as qemu-io-cmds.c parses it (the subset svmm runs):
/// `read [-q] [-P pattern] off len`, `write [-q] [-z [-u]] [-P pattern] off len`, `aio_read`,
/// `aio_write` (the same options), `flush`, `aio_flush`.
public enum QemuIoCommand: Equatable, Sendable {
    case read(offset: Int64, length: Int64, pattern: UInt8?, quiet: Bool, async: Bool)
    case write(offset: Int64, length: Int64, pattern: UInt8, zeroes: Bool, unmap: Bool, quiet: Bool, async: Bool)
    case flush
    case aioFlush

    /// The text qemu-io prints instead of running the command (usage, bad number, unknown command).
    public struct Refusal: Error, Equatable {
        public let output: String
        /// True for what qemu-io writes to stderr.
        public let isError: Bool
    }

    static let usage = [
        "read": "read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset",
        "aio_read": "aio_read [-Cqv] [-P pattern] [-i id] off len [len..] -- asynchronously reads a number of bytes",
        "write": "write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset",
        "aio_write": "aio_write [-Cfquz] [-P pattern] [-i id] off len [len..] -- asynchronously writes a number of bytes",
    ]

    /// qemuio_command: the line split on spaces (breakline), the command looked up, its options read.
    public static func parse(_ line: String) throws(Refusal) -> QemuIoCommand? {
        let words = line.split(separator: " ").map(String.init)
        guard let name = words.first else { return nil }
        let arguments = Array(words.dropFirst())
        switch name {
        case "read", "r": return try transfer(isWrite: false, async: false, name: "read", arguments)
        case "aio_read": return try transfer(isWrite: false, async: true, name: "aio_read", arguments)
        case "write", "w": return try transfer(isWrite: true, async: false, name: "write", arguments)
        case "aio_write": return try transfer(isWrite: true, async: true, name: "aio_write", arguments)
        case "flush", "f":
            guard arguments.isEmpty else { throw Refusal(output: "bad argument count \(arguments.count) to flush, expected 0 arguments\n", isError: true) }
            return .flush
        case "aio_flush":
            guard arguments.isEmpty else { throw Refusal(output: "bad argument count \(arguments.count) to aio_flush, expected 0 arguments\n", isError: true) }
            return .aioFlush
        default:
            throw Refusal(output: "command \"\(name)\" not found\n", isError: true)
        }
    }

    private static func transfer(isWrite: Bool, async: Bool, name: String, _ arguments: [String]) throws(Refusal) -> QemuIoCommand {
        // command()'s check before the options are read: read and write take at least 2 words.
        guard arguments.count >= 2 else {
            throw Refusal(output: "bad argument count \(arguments.count) to \(name), expected at least 2 arguments\n", isError: true)
        }
        var pattern: UInt8?
        var quiet = false, zeroes = false, unmap = false
        var index = 0
        let usageRefusal = Refusal(output: usage[name]! + "\n", isError: false)
        // getopt: options (clustered or not) until the first non-option word.
        while index < arguments.count, arguments[index].hasPrefix("-"), arguments[index].count > 1 {
            var flags = Array(arguments[index].dropFirst())
            index += 1
            while !flags.isEmpty {
                let flag = flags.removeFirst()
                switch flag {
                case "q": quiet = true
                case "z" where isWrite: zeroes = true
                case "u" where isWrite: unmap = true
                case "P":
                    let value: String
                    if !flags.isEmpty {
                        value = String(flags)
                        flags.removeAll()
                    } else {
                        guard index < arguments.count else { throw usageRefusal }
                        value = arguments[index]
                        index += 1
                    }
                    guard let byte = parsePattern(value) else { throw Refusal(output: "\(value) is not a valid pattern byte\n", isError: false) }
                    pattern = byte
                default:
                    throw usageRefusal
                }
            }
        }
        guard arguments.count - index == 2 else { throw usageRefusal }
        let offset = try number(arguments[index])
        let length = try number(arguments[index + 1])
        if isWrite {
            if zeroes && pattern != nil { throw Refusal(output: "-z and -P cannot be specified at the same time\n", isError: false) }
            if unmap && !zeroes { throw Refusal(output: "-u requires -z to be specified\n", isError: false) }
        }
        guard length <= Int64(Int32.max) else {
            throw Refusal(output: "length cannot exceed \(Int32.max), given \(length)\n", isError: false)
        }
        if isWrite {
            return .write(offset: offset, length: length, pattern: pattern ?? 0xcd, zeroes: zeroes, unmap: unmap, quiet: quiet, async: async)
        }
        return .read(offset: offset, length: length, pattern: pattern, quiet: quiet, async: async)
    }

    /// parse_pattern: qemu_strtol base 0, a byte.
    private static func parsePattern(_ text: String) -> UInt8? {
        var digits = Substring(text)
        var radix = 10
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { radix = 16; digits = digits.dropFirst(2) }
        else if digits.count > 1, digits.hasPrefix("0") { radix = 8; digits = digits.dropFirst() }
        guard let value = Int(digits, radix: radix), (0...255).contains(value) else { return nil }
        return UInt8(value)
    }

    /// cvtnum (qemu_strtosz): a number with an optional b/k/M/G/T/P/E suffix, powers of 1024.
    static func number(_ text: String) throws(Refusal) -> Int64 {
        let shifts: [Character: Int64] = ["b": 0, "B": 0, "k": 10, "K": 10, "m": 20, "M": 20, "g": 30, "G": 30,
                                          "t": 40, "T": 40, "p": 50, "P": 50, "e": 60, "E": 60]
        var digits = Substring(text)
        var shift: Int64 = 0
        if let last = digits.last, let suffix = shifts[last] {
            shift = suffix
            digits = digits.dropLast()
        }
        let radix = digits.hasPrefix("0x") ? 16 : 10
        if radix == 16 { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, let value = Int64(digits, radix: radix), value >= 0 else {
            throw Refusal(output: "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- \(text)\n", isError: false)
        }
        let (scaled, overflow) = value.multipliedReportingOverflow(by: Int64(1) << shift)
        guard !overflow else { throw Refusal(output: "Argument '\(text)' is too large\n", isError: false) }
        return scaled
    }
}
