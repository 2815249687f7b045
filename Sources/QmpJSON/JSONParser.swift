/// Parses one JSON value from UTF-8 bytes, with QEMU's error texts ("JSON parse error, ...").
public struct JSONParser: Sendable {
    public struct Failure: Error, Sendable { public let message: String }

    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0
    public static let maxNesting = 1024

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes)
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else { throw Failure(message: "JSON parse error, expecting value") }
        return value
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[position]) { position += 1 }
    }

    private func fail(_ what: String) -> Failure { Failure(message: "JSON parse error, \(what)") }

    private mutating func value() throws(Failure) -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw fail("expecting value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""), UInt8(ascii: "'"): return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: return try keyword()
        }
    }

    private mutating func keyword() throws(Failure) -> JSONValue {
        let start = position
        while position < bytes.count, Self.isWordByte(bytes[position]) { position += 1 }
        let word = String(decoding: bytes[start..<position], as: UTF8.self)
        switch word {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        case "": throw fail("expecting value")
        default: throw fail("invalid keyword '\(word)'")
        }
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5f
    }

    private mutating func nest() throws(Failure) {
        depth += 1
        if depth > Self.maxNesting { throw fail("nesting too deep") }
    }

    private mutating func object() throws(Failure) -> JSONValue {
        try nest()
        defer { depth -= 1 }
        position += 1
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            // parse_pair parses any value as the key, so `{"a": 1,}` fails with "expecting value".
            guard case .string(let key) = try value() else { throw fail("key is not a string in object") }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("missing : in object pair") }
            position += 1
            let member = try value()
            // parse_pair checks after the value, so an error inside the value comes first.
            if members.contains(where: { $0.0 == key }) { throw fail("duplicate key") }
            members.append((key, member))
            skipWhitespace()
            guard position < bytes.count else { throw fail("expected separator in dict") }
            if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            guard bytes[position] == UInt8(ascii: ",") else { throw fail("expected separator in dict") }
            position += 1
        }
    }

    private mutating func array() throws(Failure) -> JSONValue {
        try nest()
        defer { depth -= 1 }
        position += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            items.append(try value())
            skipWhitespace()
            guard position < bytes.count else { throw fail("expected separator in list") }
            if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(items)
            }
            guard bytes[position] == UInt8(ascii: ",") else { throw fail("expected separator in list") }
            position += 1
        }
    }

    /// Double- or (as QEMU accepts) single-quoted strings with JSON escapes, decoded as QEMU's
    /// parse_string does: raw bytes must be UTF-8 as mod_utf8_codepoint accepts it (no overlong
    /// forms but \xC0\x80 for NUL, no surrogates, no noncharacters), `\u` takes exactly four hex
    /// digits and a surrogate pair, and the code point must be valid. (Raw control characters
    /// never get here: the splitter reports them as stray tokens, as QEMU's lexer does.)
    private mutating func string() throws(Failure) -> String {
        let quote = bytes[position]
        let tokenStart = position
        position += 1
        // The string is collected as UTF-8 bytes, plain ASCII a run at a time: appending scalar
        // by scalar made a 10 MiB string cost seconds.
        var utf8: [UInt8] = []
        func append(_ scalar: Unicode.Scalar) { UTF8.encode(scalar) { utf8.append($0) } }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == quote {
                position += 1
                return String(decoding: utf8, as: UTF8.self)
            }
            if byte < 0x20 { throw fail("stray '\(String(decoding: bytes[tokenStart...position], as: UTF8.self))'") }
            if byte < 0x80 && byte != UInt8(ascii: "\\") {
                let run = position
                position = bytes.withUnsafeBufferPointer { buffer in
                    var index = run
                    while index < buffer.count {
                        let next = buffer[index]
                        if next < 0x20 || next >= 0x80 || next == quote || next == UInt8(ascii: "\\") { break }
                        index += 1
                    }
                    return index
                }
                utf8.append(contentsOf: bytes[run..<position])
                continue
            }
            if byte != UInt8(ascii: "\\") {
                guard let (scalar, length) = Self.modifiedUTF8Scalar(bytes, at: position) else {
                    throw fail("invalid UTF-8 sequence in string")
                }
                if scalar.value == 0 {
                    utf8.append(0)  // \xC0\x80, modified UTF-8's NUL
                } else {
                    utf8.append(contentsOf: bytes[position..<position + length])
                }
                position += length
                continue
            }
            let escapeStart = position
            position += 1
            guard position < bytes.count else { break }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "n"): append("\n")
            case UInt8(ascii: "t"): append("\t")
            case UInt8(ascii: "r"): append("\r")
            case UInt8(ascii: "b"): append("\u{8}")
            case UInt8(ascii: "f"): append("\u{c}")
            case UInt8(ascii: "u"):
                var code = hex4(at: position)
                position = min(position + 4, bytes.count)
                if let high = code, (0xd800...0xdbff).contains(high),
                   position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                    if let low = hex4(at: position + 2), (0xdc00...0xdfff).contains(low) {
                        code = 0x10000 + ((high & 0x3ff) << 10) | (low & 0x3ff)
                        position += 6
                    } else {
                        code = nil
                    }
                }
                guard let code, Self.isValidCodePoint(code), let scalar = Unicode.Scalar(code) else {
                    let shown = bytes[escapeStart..<min(position, stringEnd(from: escapeStart))]
                    throw fail("\(String(decoding: shown, as: UTF8.self)) is not a valid Unicode character")
                }
                append(scalar)
            case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                utf8.append(escape)
            default: throw fail("invalid escape sequence in string")
            }
        }
        throw fail("missing terminating quote")
    }

    /// cvt4hex: four hex digits, or nil.
    private func hex4(at offset: Int) -> UInt32? {
        guard offset + 4 <= bytes.count else { return nil }
        var code: UInt32 = 0
        for byte in bytes[offset..<offset + 4] {
            guard let digit = Self.hexDigit(byte) else { return nil }
            code = code << 4 | digit
        }
        return code
    }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Just past the closing quote of the string an escape at `offset` is in: QEMU's error
    /// text shows the escape as far as its token goes.
    private func stringEnd(from offset: Int) -> Int {
        var index = offset
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\") {
                index += 2
            } else if bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") {
                return index + 1
            } else {
                index += 1
            }
        }
        return bytes.count
    }

    /// util/unicode.c is_valid_codepoint: in range, not a surrogate, not a noncharacter.
    static func isValidCodePoint(_ code: UInt32) -> Bool {
        code <= 0x10ffff && code & 0xffff_f800 != 0xd800 && code & 0xfffe != 0xfffe && !(0xfdd0...0xfdef).contains(code)
    }

    /// mod_utf8_codepoint: one scalar and its length in bytes, or nil for anything else.
    static func modifiedUTF8Scalar(_ bytes: [UInt8], at offset: Int) -> (Unicode.Scalar, Int)? {
        let lead = bytes[offset]
        if lead < 0x80 { return (Unicode.Scalar(lead), 1) }
        guard lead < 0xfe, lead & 0x40 != 0 else { return nil }  // impossible byte, stray continuation
        var length = 0
        var mask: UInt8 = 0x80
        while lead & mask != 0 {
            length += 1
            mask >>= 1
        }
        var code = UInt32(lead & (mask &- 1))
        for index in 1..<length {
            guard offset + index < bytes.count, bytes[offset + index] & 0xc0 == 0x80 else { return nil }
            code = code << 6 | UInt32(bytes[offset + index] & 0x3f)
        }
        let minimum: [UInt32] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000]
        guard isValidCodePoint(code), code >= minimum[length - 2] || (code == 0 && length == 2),
              let scalar = Unicode.Scalar(code) else { return nil }
        return (scalar, length)
    }

    /// A number as json-lexer.c's states read one: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`,
    /// so `1-2` is two numbers, not one bad one.
    private mutating func number() throws(Failure) -> JSONValue {
        let start = position
        func digits() -> Int {
            let first = position
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") { position += 1 }
            return position - first
        }
        func at(_ characters: String) -> Bool {
            position < bytes.count && characters.utf8.contains(bytes[position])
        }
        if at("-") { position += 1 }
        if at("0") { position += 1 } else if digits() == 0 { throw fail("invalid number '\(String(decoding: bytes[start..<position], as: UTF8.self))'") }
        var isInteger = true
        if at(".") {
            isInteger = false
            position += 1
            if digits() == 0 { throw fail("invalid number '\(String(decoding: bytes[start..<position], as: UTF8.self))'") }
        }
        if at("eE") {
            isInteger = false
            position += 1
            if at("+-") { position += 1 }
            if digits() == 0 { throw fail("invalid number '\(String(decoding: bytes[start..<position], as: UTF8.self))'") }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        // QEMU keeps an integer as int64 if it fits, else as uint64, else as a double (strtod).
        if isInteger, let number = Int64(text) { return .int(number) }
        if isInteger, !text.hasPrefix("-"), let number = UInt64(text) { return .uint(number) }
        guard let number = Double(text) else { throw fail("invalid number '\(text)'") }
        return .double(number)
    }
}
