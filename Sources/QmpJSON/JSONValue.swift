import Glibc

/// A JSON value as QMP carries it. Objects keep their key order, so replies read like QEMU's.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    /// An integer above INT64_MAX, as QEMU's QNUM_U64.
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.uint(let a), .uint(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public static let emptyObject = JSONValue.object([])

    /// Compact serialization with QEMU's spacing (`{"return": {}}`).
    public var serialized: String { String(decoding: serializedBytes, as: UTF8.self) }

    /// The same as UTF-8 bytes, built as bytes (a 10 MiB string echoed cost seconds as a String).
    public var serializedBytes: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .int(let number): out += Array(String(number).utf8)
        case .uint(let number): out += Array(String(number).utf8)
        case .double(let number): out += Array(Self.formatDouble(number).utf8)
        case .string(let text): Self.writeString(text, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out += [UInt8(ascii: ","), UInt8(ascii: " ")] }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out += [UInt8(ascii: ","), UInt8(ascii: " ")] }
                Self.writeString(key, to: &out)
                out += [UInt8(ascii: ":"), UInt8(ascii: " ")]
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// qnum_to_string: `%.17g`, so `0.1` reads `0.10000000000000001` and `1e400` reads `inf`, as QEMU.
    public static func formatDouble(_ number: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 40)
        _ = withVaList([number]) { vsnprintf(&buffer, buffer.count, "%.17g", $0) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// qjson.c's to_json for strings: the short escapes, and `\uXXXX` (upper-case, surrogate pairs
    /// beyond the BMP) for control characters and everything from DEL up; printable ASCII is
    /// copied a run at a time.
    private static func writeString(_ text: String, to out: inout [UInt8]) {
        func hex(_ value: UInt32) {
            let digits = Array(String(value, radix: 16, uppercase: true).utf8)
            out += [UInt8(ascii: "\\"), UInt8(ascii: "u")] + [UInt8](repeating: UInt8(ascii: "0"), count: max(0, 4 - digits.count)) + digits
        }
        out.append(UInt8(ascii: "\""))
        var utf8 = text.utf8[...]
        while !utf8.isEmpty {
            let plain = utf8.prefix { $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
            out += plain
            utf8 = utf8[plain.endIndex...]
            guard let first = utf8.first else { break }
            // One scalar that needs an escape: decode it from the UTF-8 (String's bytes are valid).
            let length = first < 0x80 ? 1 : first < 0xe0 ? 2 : first < 0xf0 ? 3 : 4
            let scalarBytes = utf8.prefix(length)
            utf8 = utf8[scalarBytes.endIndex...]
            let scalar = String(decoding: scalarBytes, as: UTF8.self).unicodeScalars.first!
            switch scalar {
            case "\"": out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case "\\": out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case "\u{8}": out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case "\u{c}": out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case "\n": out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case "\r": out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case "\t": out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case _ where scalar.value > 0xffff:
                let offset = scalar.value - 0x10000
                hex(0xd800 + (offset >> 10))
                hex(0xdc00 + (offset & 0x3ff))
            default: hex(scalar.value)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
