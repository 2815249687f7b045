/// Cuts a QMP byte stream into complete top-level JSON texts, as QEMU's json-streamer does:
/// braces and brackets are counted outside strings; a bare token ends at whitespace.
///
/// Linear in the input: one pass keeps the start of the piece being built as an index, and the
/// consumed bytes are dropped once per `feed`, so a megabyte of one-byte pieces costs a megabyte
/// of work (cutting each piece off the front of the buffer made it quadratic).
///
/// Strings are lexed as QEMU's json-lexer.c does: a raw control character or an impossible
/// UTF-8 byte (0xFE, 0xFF) inside one is a lexical error. Like json_message_process_token, the
/// splitter then drops the value being built and reports the bad token (`.stray`); like the
/// lexer's IN_RECOVERY state it skips what follows up to a structural character, a control
/// character other than tab, or 0xFE/0xFF, and starts afresh there.
struct JSONStreamSplitter {
    /// QEMU refuses tokens over 64 MiB; so do we, and start afresh.
    static let maxPending = 64 << 20
    /// json-streamer.c's MAX_NESTING: more open brackets and braces than this end the value.
    static let maxNesting = 1024

    private var pending: [UInt8] = []
    /// Where the piece being built starts in `pending`.
    private var start = 0
    private var scanned = 0
    private var depth = 0
    private var inString: UInt8? = nil
    private var stringStart = 0
    private var escaped = false
    private var recovering = false

    enum Piece: Equatable {
        case text([UInt8])
        /// A lexical error: the token up to and including the bad byte (json-streamer's "stray").
        case stray([UInt8])
        case tooLarge
        /// More than `maxNesting` levels: the value so far is dropped, as json-streamer does.
        case tooDeep
    }

    mutating func feed(_ bytes: some Collection<UInt8>) -> [Piece] {
        pending.append(contentsOf: bytes)
        var pieces: [Piece] = []
        while scanned < pending.count {
            let byte = pending[scanned]
            if recovering {
                guard Self.endsRecovery(byte) else {
                    scanned += 1
                    start = scanned
                    continue
                }
                recovering = false
                start = scanned  // the byte that ends recovery is lexed afresh
            }
            scanned += 1
            switch consume(byte) {
            case .none: break
            case .complete:
                let text = pending[start..<scanned]
                if !text.allSatisfy(Self.isWhitespace) { pieces.append(.text(Array(text))) }
                start = scanned
            case .tooDeep:
                pieces.append(.tooDeep)
                depth = 0
                start = scanned
            case .lexicalError:
                pieces.append(.stray(Array(pending[stringStart..<scanned])))
                depth = 0
                inString = nil
                escaped = false
                recovering = true
                start = scanned
            }
        }
        if pending.count - start > Self.maxPending {
            start = pending.count
            scanned = pending.count
            depth = 0
            inString = nil
            escaped = false
            pieces.append(.tooLarge)
        }
        if start > 0 {
            pending.removeFirst(start)
            scanned -= start
            stringStart = max(0, stringStart - start)
            start = 0
        }
        return pieces
    }

    static func isWhitespace(_ byte: UInt8) -> Bool { [0x20, 0x09, 0x0a, 0x0d].contains(byte) }

    /// json-lexer.c's IN_RECOVERY: these bytes are promising resynchronization points.
    private static func endsRecovery(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x09: false
        case 0x00...0x1f, 0xfe, 0xff: true
        case UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ":"), UInt8(ascii: ","): true
        default: false
        }
    }

    private enum Outcome { case none, complete, tooDeep, lexicalError }

    private mutating func consume(_ byte: UInt8) -> Outcome {
        if let quote = inString {
            // IN_DQ_STRING / IN_SQ_STRING and their _ESCAPE states accept only 0x20...0xFD.
            if byte < 0x20 || byte >= 0xfe { return .lexicalError }
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == quote { inString = nil }
            if inString == nil && depth == 0 { return .complete }
            return .none
        }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            inString = byte
            stringStart = scanned - 1
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
            if depth > Self.maxNesting { return .tooDeep }
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            if depth <= 0 {
                depth = 0
                return .complete
            }
        case 0x0a where depth == 0:
            return .complete  // a bare token (or garbage) on its own line
        default:
            break
        }
        return .none
    }
}
