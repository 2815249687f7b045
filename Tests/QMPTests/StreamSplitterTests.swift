import Testing
@testable import QMP

@Suite struct StreamSplitterTests {
    private static func texts(_ pieces: [JSONStreamSplitter.Piece]) -> [String] {
        pieces.map { piece in
            switch piece {
            case .text(let bytes): String(decoding: bytes, as: UTF8.self)
            case .stray(let bytes): "stray:" + String(decoding: bytes, as: UTF8.self)
            case .tooLarge: "tooLarge"
            case .tooDeep: "tooDeep"
            case .tooManyTokens: "tooManyTokens"
            }
        }
    }

    @Test func aMebibyteOfClosingBracketsIsAMebibyteOfPieces() {
        var splitter = JSONStreamSplitter()
        var count = 0
        for _ in 0..<16 {
            let pieces = splitter.feed([UInt8](repeating: UInt8(ascii: "]"), count: 64 << 10))
            #expect(pieces.allSatisfy { $0 == .text([UInt8(ascii: "]")]) })
            count += pieces.count
        }
        #expect(count == 1 << 20)
    }

    @Test func aValueSplitAcrossFeedsIsOnePiece() {
        var splitter = JSONStreamSplitter()
        #expect(splitter.feed(Array(#"{"execute": "qu"#.utf8)).isEmpty)
        #expect(Self.texts(splitter.feed(Array(#"ery-status"}{"#.utf8))) == [#"{"execute": "query-status"}"#])
        #expect(Self.texts(splitter.feed(Array(#"}"#.utf8))) == ["{}"])
    }

    @Test func aControlCharacterInAStringIsAStrayTokenAndTheStreamRecoversAsQEMUs() {
        var splitter = JSONStreamSplitter()
        let pieces = splitter.feed(Array("{\"execute\": \"query-status\", \"id\": \"a\tb\"}\n{\"execute\": \"x\"}".utf8))
        // QEMU answers `stray '"a<TAB>'`, then `expecting value` for the `}` it resynchronizes on.
        #expect(Self.texts(pieces) == ["stray:\"a\t", "}", "{\"execute\": \"x\"}"])
    }

    @Test func impossibleUTF8BytesInAStringAreStrayTokens() {
        var splitter = JSONStreamSplitter()
        let pieces = splitter.feed(Array("[\"".utf8) + [0xff] + Array("x\"]".utf8))
        #expect(pieces == [.stray([UInt8(ascii: "\""), 0xff]), .text([UInt8(ascii: "]")])])
    }

    @Test func nestingBeyond1024EndsTheValueAsQEMUsStreamerDoes() {
        var splitter = JSONStreamSplitter()
        let ok = String(repeating: "[", count: 1024) + String(repeating: "]", count: 1024)
        #expect(Self.texts(splitter.feed(Array(ok.utf8))) == [ok])
        // QEMU answers "JSON nesting depth limit exceeded", then each `]` left is a value of its own.
        let pieces = splitter.feed(Array((String(repeating: "[", count: 1025) + "]]").utf8))
        #expect(Self.texts(pieces) == ["tooDeep", "]", "]"])
    }

    @Test(arguments: [
        ("01 ", ["stray:01"]),
        ("1.}", ["stray:1.}"]),
        ("+1}", ["stray:+", "}"]),
        ("True", ["stray:T"]),
        ("1 2 ", ["1", "2"]),
        ("[1, 2] [3]", ["[1, 2]", "[3]"]),
        ("[}", ["[}"]),
        ("nul ", ["nul"]),
    ])
    func tokensAreLexedAsQEMUsLexerDoes(input: String, expected: [String]) {
        var splitter = JSONStreamSplitter()
        #expect(Self.texts(splitter.feed(Array(input.utf8))) == expected)
    }

    @Test func aNumberAtTheEndOfTheInputWaitsForWhatFollows() {
        var splitter = JSONStreamSplitter()
        #expect(splitter.feed(Array("12".utf8)).isEmpty)
        #expect(Self.texts(splitter.feed(Array("3\n".utf8))) == ["123"])
    }

    @Test func aMessageOfMoreThan2MiTokensIsDroppedAsQEMUsStreamerDoes() {
        var splitter = JSONStreamSplitter()
        // `[` and 2 Mi - 1 more tokens fit; the token after them is one too many.
        let fits = "[" + String(repeating: "1,", count: (JSONStreamSplitter.maxTokens - 2) / 2) + "1"
        #expect(splitter.feed(Array(fits.utf8)).isEmpty)
        let pieces = splitter.feed(Array(",2]".utf8))
        #expect(pieces.first == .tooManyTokens)
        #expect(pieces.first?.errorMessage == "JSON token count limit exceeded")
    }
}
