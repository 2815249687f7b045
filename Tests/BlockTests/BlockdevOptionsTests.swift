import Testing
@testable import Block

/// `-blockdev` / `blockdev-add` options refused as QEMU 7.2 refuses them, before anything opens.
@Suite struct BlockdevOptionsTests {
    @Test(arguments: [
        ("0", Int64(0)), ("42", 42), ("-42", -42), ("0x10", 16), ("010", 8), ("+7", 7),
        ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
    ])
    func integersAreReadAsQemuStrtoi64ReadsThem(text: String, value: Int64) {
        #expect(OptionReader.integer(text) == value)
    }

    @Test(arguments: ["", "1G", "9999999999T", "9223372036854775808", "-9223372036854775809", "08", "0x", "1.5", "--1", "+-1", "1 "])
    func otherTextIsNotAnInteger(text: String) {
        #expect(OptionReader.integer(text) == nil)
    }

    private static func refusal(_ values: [String: OptionValue], commandLine: Bool = false) -> String? {
        do {
            _ = try BlockdevOptions(values, fromCommandLine: commandLine)
            return nil
        } catch {
            return error.description
        }
    }

    @Test(arguments: [
        ("a b#", "Invalid node-name: 'a b#'"), ("#block123", "Invalid node-name: '#block123'"), ("", "Invalid node-name: ''"),
        ("a\u{0}b", "Invalid node-name: 'a\u{0}b'"), ("\u{e9}t\u{e9}", "Invalid node-name: '\u{e9}t\u{e9}'"),
        (String(repeating: "n", count: 32), "Node name too long"),
    ])
    func nodeNamesFollowIdWellformed(name: String, message: String) {
        #expect(Self.refusal(["driver": .string("null-co"), "node-name": .string(name)]) == message)
    }

    @Test func aNodeNameOf31CharactersIsFine() {
        #expect(Self.refusal(["driver": .string("null-co"), "node-name": .string(String(repeating: "n", count: 31))]) == nil)
    }

    @Test(arguments: [
        (["driver": OptionValue.string("null-co"), "size": .int(-1)], "Parameter 'size' expects a non-negative number below 2^64"),
        (["driver": .string("null-co"), "size": .int(BlockdevOptions.maxLength + 1)], "Could not refresh total sector count: File too large"),
        (["driver": .string("raw"), "file": .string("f"), "offset": .int(-1)], "Parameter 'offset' expects a non-negative number below 2^64"),
        (["driver": .string("raw"), "file": .string("f"), "offset": .int(1), "size": .int(Int64.max)],
         "The sum of offset (1) and size (9223372036854775807) has to be smaller or equal to the  actual size of the containing file"),
        (["driver": .string("file"), "filename": .string("/tmp/a\u{0}b")], "Could not open '/tmp/a\u{0}b': No such file or directory"),
    ] as [([String: OptionValue], String)])
    func outsideNumbersAndNamesAreRefused(values: [String: OptionValue], message: String) {
        #expect(Self.refusal(values) == message)
    }

    @Test func aNullCoOfBDRVMaxLengthIsFine() {
        #expect(Self.refusal(["driver": .string("null-co"), "size": .int(BlockdevOptions.maxLength)]) == nil)
    }

    @Test func keysNestAtMost1024LevelsDeep() throws {
        let deep = Array(repeating: "a", count: 1025).joined(separator: ".")
        #expect(throws: BlockError.self) { try OptionValue.fromDottedKeys([(key: deep, value: "1")]) }
        _ = try OptionValue.fromDottedKeys([(key: Array(repeating: "a", count: 1024).joined(separator: "."), value: "1")])
    }
}
