import Testing
@testable import QMP

/// Arguments checked as QAPI's input visitor checks them, with QEMU 7.2's texts.
@Suite struct ArgumentRangeTests {
    private static var schema: [QmpArguments.Member] { [.optional("max-connections", .uint32), .optional("size", .int)] }

    @Test(arguments: [JSONValue.int(-1), .int(4_294_967_296), .uint(UInt64.max)])
    func aUint32MemberOutOfRangeIsRefused(value: JSONValue) {
        #expect(throws: QmpError("Parameter 'max-connections' expects uint32_t")) {
            try QmpArguments(.object([("max-connections", value)]), schema: Self.schema)
        }
    }

    @Test func aUint32MemberInRangeIsKept() throws {
        let arguments = try QmpArguments(.object([("max-connections", .int(4_294_967_295))]), schema: Self.schema)
        #expect(arguments.uint32("max-connections") == UInt32.max)
    }

    /// qobject_input_type_uint64: any integer JSON holds in 64 bits, a negative one wrapped "for
    /// backward compatibility" (`max-bandwidth: -1` is 2^64-1 in QEMU 7.2); anything else, a
    /// double or a string or more than 64 bits, is "expects uint64", not a type error.
    @Test func aUint64MemberWrapsNegativesAndRefusesTheRest() throws {
        let schema: [QmpArguments.Member] = [.optional("max-bandwidth", .uint64)]
        for (value, expected) in [(JSONValue.int(-1), UInt64.max), (.uint(UInt64.max), UInt64.max), (.int(5), 5)] {
            #expect(try QmpArguments(.object([("max-bandwidth", value)]), schema: schema).uint64("max-bandwidth") == expected)
        }
        for value in [JSONValue.double(1.5), .double(18446744073709551616), .string("1"), .bool(true)] {
            #expect(throws: QmpError("Parameter 'max-bandwidth' expects uint64")) {
                try QmpArguments(.object([("max-bandwidth", value)]), schema: schema)
            }
        }
    }

    @Test func anIntegerAboveINT64MAXIsNotAnInt64() {
        #expect(throws: QmpError("Invalid parameter type for 'size', expected: integer")) {
            try QmpArguments(.object([("size", .uint(1 << 63))]), schema: Self.schema)
        }
    }

    @Test(arguments: [
        (#"{"type": "unix", "data": {"path": "/s", "bogus": 1}}"#, "Parameter 'addr.data.bogus' is unexpected"),
        (#"{"type": "unix", "bogus": 1, "data": {"path": "/s"}}"#, "Parameter 'addr.bogus' is unexpected"),
        (#"{"type": "inet", "data": {"host": "h", "port": "1", "bogus": 1}}"#, "Parameter 'addr.data.bogus' is unexpected"),
        (#"{"type": "unix", "data": {"path": 5}}"#, "Invalid parameter type for 'addr.data.path', expected: string"),
        (#"{"type": "inet", "data": {"host": "h", "port": 1}}"#, "Invalid parameter type for 'addr.data.port', expected: string"),
        (#"{"type": "unix", "data": 1}"#, "Invalid parameter type for 'addr.data', expected: object"),
        (#"{"type": "vsock", "data": {}}"#, "Parameter 'addr.type' does not accept value 'vsock'"),
        (#"{"data": {"path": "/s"}}"#, "Parameter 'addr.type' is missing"),
        (#"{"type": "unix", "data": {"path": "/s\u0000x"}}"#, "Parameter 'addr.data.path' must not contain a NUL character"),
    ])
    func aBadLegacySocketAddressIsRefused(text: String, message: String) throws {
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(throws: QmpError(message)) { try QmpMonitor.legacySocketAddress(value) }
    }
}
