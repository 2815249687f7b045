import Testing
@testable import QMP

/// What QEMU 7.2's json-parser.c accepts and refuses, with its words (checked against
/// qemu-system-x86_64 7.2 on the same input).
@Suite struct JSONStrictnessTests {
    private static func message(_ bytes: [UInt8]) -> String? {
        do {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch {
            return error.message
        }
    }

    @Test(arguments: [
        (#"{"x": 1, "x": 2}"#, "JSON parse error, duplicate key"),
        (#"{"a": {"b": 1, "b": 1}}"#, "JSON parse error, duplicate key"),
        (#"{"x": 1, "x": }"#, "JSON parse error, expecting value"),
        (#""\u+041""#, #"JSON parse error, \u+041 is not a valid Unicode character"#),
        (#""\u004""#, #"JSON parse error, \u004" is not a valid Unicode character"#),
        (#""\ud83d""#, #"JSON parse error, \ud83d is not a valid Unicode character"#),
        (#""\ud83dx""#, #"JSON parse error, \ud83d is not a valid Unicode character"#),
        (#""\ud83d\u0041""#, #"JSON parse error, \ud83d is not a valid Unicode character"#),
        (#""\ude00""#, #"JSON parse error, \ude00 is not a valid Unicode character"#),
        (#""\uffff""#, #"JSON parse error, \uffff is not a valid Unicode character"#),
        (#""\ufdd0""#, #"JSON parse error, \ufdd0 is not a valid Unicode character"#),
        (#""\x""#, "JSON parse error, invalid escape sequence in string"),
    ])
    func refusedAsQEMURefusesIt(text: String, expected: String) {
        #expect(Self.message(Array(text.utf8)) == expected)
    }

    @Test(arguments: [
        [0xe9], [0xed, 0xa0, 0xbd], [0xf4, 0x90, 0x80, 0x80], [0xef, 0xbf, 0xbf], [0xe0, 0x80, 0xaf],
        [0xc1, 0xbf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80],
    ] as [[UInt8]])
    func invalidUTF8InAStringIsRefused(sequence: [UInt8]) {
        #expect(Self.message([UInt8(ascii: "\"")] + sequence + [UInt8(ascii: "\"")]) == "JSON parse error, invalid UTF-8 sequence in string")
    }

    @Test func validUTF8AndModifiedUTF8NulAreAccepted() throws {
        #expect(try JSONParser.parse(Array("\"\u{e9}\u{1F600}\u{7f}\"".utf8)) == .string("\u{e9}\u{1F600}\u{7f}"))
        #expect(try JSONParser.parse([0x22, 0xc0, 0x80, 0x22]) == .string("\u{0}"))
    }

    @Test func aSurrogatePairIsOneCharacterAndIsEchoedAsQEMUDoes() throws {
        let value = try JSONParser.parse(Array(#""\ud83d\ude00""#.utf8))
        #expect(value == .string("\u{1F600}"))
        #expect(value.serialized == #""\uD83D\uDE00""#)
    }

    @Test func stringsAreSerializedWithQEMUsEscapes() {
        #expect(JSONValue.string("a\u{0}\u{8}\u{c}\u{1f}\u{7f}\u{e9}/\"\\").serialized == #""a\u0000\b\f\u001F\u007F\u00E9/\"\\""#)
    }

    @Test(arguments: [
        ("18446744073709551615", "18446744073709551615"),
        ("9223372036854775808", "9223372036854775808"),
        ("9223372036854775807", "9223372036854775807"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("18446744073709551616", "1.8446744073709552e+19"),
        ("-9223372036854775809", "-9.2233720368547758e+18"),
        ("-0", "0"),
        ("0.1", "0.10000000000000001"),
        ("1e2", "100"),
        ("1.5e400", "inf"),
    ])
    func numbersAreKeptAndEchoedAsQEMUKeepsThem(text: String, echoed: String) throws {
        #expect(try JSONParser.parse(Array(text.utf8)).serialized == echoed)
    }

    @Test func anIntegerAboveINT64MAXIsUnsignedNotNegative() throws {
        #expect(try JSONParser.parse(Array("18446744073709551615".utf8)) == .uint(UInt64.max))
    }
}
