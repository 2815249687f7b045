import Testing
@testable import QMP

@Suite struct JSONTests {
    @Test(arguments: [
        ("{\"execute\": }", "JSON parse error, expecting value"),
        ("foo", "JSON parse error, invalid keyword 'foo'"),
        ("{\"a\" 1}", "JSON parse error, missing : in object pair"),
        ("{\"a\": 1 \"b\": 2}", "JSON parse error, expected separator in dict"),
        ("[1 2]", "JSON parse error, expected separator in list"),
        ("\"abc", "JSON parse error, missing terminating quote"),
    ])
    func malformedInputGivesQEMUsMessage(text: String, message: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(text.utf8)) }
        do {
            _ = try JSONParser.parse(Array(text.utf8))
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func parsesAndSerializesKeepingKeyOrder() throws {
        let value = try JSONParser.parse(Array(#"{"execute": "x", "arguments": {"b": [1, true, null, "s\n"], "a": -2.5}, "id": 7}"#.utf8))
        #expect(value["execute"] == .string("x"))
        #expect(value["id"] == .int(7))
        #expect(value.serialized == #"{"execute": "x", "arguments": {"b": [1, true, null, "s\n"], "a": -2.5}, "id": 7}"#)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Array(deep.utf8)) }
    }

    @Test func splitterCutsAStreamIntoValues() {
        var splitter = JSONStreamSplitter()
        var pieces = splitter.feed(Array(#"{"execute": "a"}{"execute":"#.utf8))
        #expect(pieces.count == 1)
        pieces = splitter.feed(Array(#" "b", "x": "}{"} garbage"#.utf8) + [0x0a])
        let texts = pieces.compactMap { piece -> String? in
            if case .text(let bytes) = piece { return String(decoding: bytes, as: UTF8.self) }
            return nil
        }
        #expect(texts == [#"{"execute": "b", "x": "}{"}"#, "garbage"])
    }
}

@Suite struct DispatchTests {
    @Test(arguments: [
        (JSONValue.array([.int(1)]), "QMP input must be a JSON object"),
        (.object([("arguments", .emptyObject)]), "QMP input lacks member 'execute'"),
        (.object([("execute", .int(1))]), "QMP input member 'execute' must be a string"),
        (.object([("execute", .string("x")), ("foo", .int(1))]), "QMP input member 'foo' is unexpected"),
        (.object([("execute", .string("x")), ("arguments", .int(1))]), "QMP input member 'arguments' must be an object"),
    ])
    func badRequestsAreRefusedInQEMUsWords(request: JSONValue, message: String) {
        #expect(throws: QmpError(message)) { try QmpMonitor.parseRequest(request) }
    }

    @Test func argumentsAreCheckedBeforeTheCommandRuns() {
        let schema: [QmpArguments.Member] = [.required("node-name", .string)]
        #expect(throws: QmpError("Parameter 'node-name' is missing")) { try QmpArguments(.emptyObject, schema: schema) }
        #expect(throws: QmpError("Parameter 'foo' is unexpected")) {
            try QmpArguments(.object([("node-name", .string("a")), ("foo", .int(1))]), schema: schema)
        }
        #expect(throws: QmpError("Invalid parameter type for 'node-name', expected: string")) {
            try QmpArguments(.object([("node-name", .int(1))]), schema: schema)
        }
    }
}
