/// Cuts a QMP byte stream into JSON messages as QEMU's json-lexer.c and json-streamer.c do: the
/// bytes are lexed into tokens, and a message ends with the token that closes its last brace or
/// bracket (a token outside any is a message of its own). A lexical error (a byte no token
/// allows: a raw control character in a string, `01`, `+`, `True`, 0xFF) drops the message
/// being built and is reported as a `.stray` piece; like the lexer's IN_RECOVERY state, the
/// splitter then skips what follows up to a structural character, a control character other
/// than tab, or 0xFE/0xFF, and starts afresh there.
///
/// Linear in the input: one pass keeps the starts of the message and token being built as
/// indexes, and the consumed bytes are dropped once per `feed`, so a megabyte of one-byte
/// messages costs a megabyte of work (cutting each off the front of the buffer was quadratic).
public struct JSONStreamSplitter: Sendable {
    /// QEMU refuses tokens over 64 MiB; so do we, and start afresh.
    public static let maxPending = 64 << 20
    /// json-streamer.c's MAX_NESTING: more open brackets and braces than this end the message.
    public static let maxNesting = 1024
    /// json-streamer.c's MAX_TOKEN_COUNT: a message of more tokens than this is dropped.
    public static let maxTokens = 2 << 20

    public enum Piece: Equatable, Sendable {
        case text([UInt8])
        /// A lexical error: the token up to and including the bad byte (json-streamer's "stray").
        case stray([UInt8])
        case tooLarge
        /// More than `maxNesting` levels: the message so far is dropped, as json-streamer does.
        case tooDeep
        /// More than `maxTokens` tokens: likewise.
        case tooManyTokens

        /// json-streamer's text for a piece that is an error of its own, if it is one.
        public var errorMessage: String? {
            switch self {
            case .text: nil
            case .stray(let token): "JSON parse error, stray '\(String(decoding: token.prefix(200), as: UTF8.self))'"
            case .tooLarge: "JSON token size limit exceeded"
            case .tooDeep: "JSON nesting depth limit exceeded"
            case .tooManyTokens: "JSON token count limit exceeded"
            }
        }
    }

    /// json-lexer.c's states (the ones JSON without interpolation uses).
    private enum State {
        case start, recovery, string, stringEscape
        case zero, nonZero, negative, mantissa, mantissaDigits, exponentE, exponentSign, exponentDigits
        case keyword
    }

    private var pending: [UInt8] = []
    private var scanned = 0
    private var messageStart = 0
    private var tokenStart = 0
    private var state = State.start
    private var quote: UInt8 = 0
    /// json-streamer counts the two separately: `[}` ends a message, `[{` does not.
    private var braces = 0
    private var brackets = 0
    private var tokens = 0

    public init() {}

    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Piece] {
        pending.append(contentsOf: bytes)
        var pieces: [Piece] = []
        while scanned < pending.count {
            let byte = pending[scanned]
            switch step(byte) {
            case .consumed:
                scanned += 1
            case .lookahead:
                break  // the byte ended the token before it; lex it again from the start state
            case .token(let consumed):
                if consumed { scanned += 1 }
                tokens += 1
                if tokens > Self.maxTokens {
                    pieces.append(.tooManyTokens)
                    endMessage()
                } else if braces + brackets > Self.maxNesting {
                    pieces.append(.tooDeep)
                    endMessage()
                } else if !((braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0) {
                    pieces.append(.text(Array(pending[messageStart..<scanned])))
                    endMessage()
                }
            case .error:
                scanned += 1
                pieces.append(.stray(Array(pending[tokenStart..<scanned])))
                endMessage()
                state = .recovery
            }
        }
        if pending.count - messageStart > Self.maxPending {
            // json-streamer gives up the message; the lexer carries on in the token it is in.
            pieces.append(.tooLarge)
            braces = 0
            brackets = 0
            tokens = 0
            messageStart = pending.count
            tokenStart = pending.count
        }
        let consumed = min(messageStart, tokenStart)
        if consumed > 0 {
            pending.removeFirst(consumed)
            scanned -= consumed
            messageStart -= consumed
            tokenStart -= consumed
        }
        return pieces
    }

    private mutating func endMessage() {
        braces = 0
        brackets = 0
        tokens = 0
        messageStart = scanned
        tokenStart = scanned
    }

    private enum Step {
        /// The byte belongs to the token being lexed (or is skipped).
        case consumed
        /// The token before the byte is complete; the byte starts the next one.
        case lookahead
        /// A token is complete, with or without this byte.
        case token(consumed: Bool)
        /// The byte is a lexical error.
        case error
    }

    private mutating func step(_ byte: UInt8) -> Step {
        switch state {
        case .recovery:
            guard Self.endsRecovery(byte) else {
                messageStart = scanned + 1
                tokenStart = scanned + 1
                return .consumed
            }
            state = .start
            return .lookahead
        case .start:
            return startToken(byte)
        case .string, .stringEscape:
            // IN_DQ_STRING / IN_SQ_STRING and their _ESCAPE states accept only 0x20...0xFD.
            if byte < 0x20 || byte >= 0xfe { return .error }
            if state == .stringEscape {
                state = .string
            } else if byte == UInt8(ascii: "\\") {
                state = .stringEscape
            } else if byte == quote {
                state = .start
                return .token(consumed: true)
            }
            return .consumed
        case .zero:
            if byte == UInt8(ascii: ".") { return next(.mantissa) }
            if Self.isDigit(byte) { return .error }
            return endToken()
        case .nonZero:
            if Self.isDigit(byte) { return .consumed }
            if byte == UInt8(ascii: ".") { return next(.mantissa) }
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { return next(.exponentE) }
            return endToken()
        case .negative:
            if byte == UInt8(ascii: "0") { return next(.zero) }
            if Self.isDigit(byte) { return next(.nonZero) }
            return .error
        case .mantissa:
            return Self.isDigit(byte) ? next(.mantissaDigits) : .error
        case .mantissaDigits:
            if Self.isDigit(byte) { return .consumed }
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { return next(.exponentE) }
            return endToken()
        case .exponentE:
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") { return next(.exponentSign) }
            return Self.isDigit(byte) ? next(.exponentDigits) : .error
        case .exponentSign:
            return Self.isDigit(byte) ? next(.exponentDigits) : .error
        case .exponentDigits:
            return Self.isDigit(byte) ? .consumed : endToken()
        case .keyword:
            return (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? .consumed : endToken()
        }
    }

    /// IN_START: what a byte begins.
    private mutating func startToken(_ byte: UInt8) -> Step {
        tokenStart = scanned
        if braces == 0 && brackets == 0 { messageStart = scanned }
        switch byte {
        case 0x20, 0x09, 0x0a, 0x0d:
            if braces == 0 && brackets == 0 { messageStart = scanned + 1 }
            tokenStart = scanned + 1
            return .consumed
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            quote = byte
            return next(.string)
        case UInt8(ascii: "0"): return next(.zero)
        case UInt8(ascii: "1")...UInt8(ascii: "9"): return next(.nonZero)
        case UInt8(ascii: "-"): return next(.negative)
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return next(.keyword)
        case UInt8(ascii: "{"): braces += 1
        case UInt8(ascii: "}"): braces -= 1
        case UInt8(ascii: "["): brackets += 1
        case UInt8(ascii: "]"): brackets -= 1
        case UInt8(ascii: ","), UInt8(ascii: ":"): break
        default: return .error
        }
        return .token(consumed: true)
    }

    private mutating func next(_ newState: State) -> Step {
        state = newState
        return .consumed
    }

    /// A number or keyword ends before this byte (json-lexer's TERMINAL with LOOKAHEAD).
    private mutating func endToken() -> Step {
        state = .start
        return .token(consumed: false)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// json-lexer.c's IN_RECOVERY: these bytes are promising resynchronization points.
    private static func endsRecovery(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x09: false
        case 0x00...0x1f, 0xfe, 0xff: true
        case UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ":"), UInt8(ascii: ","): true
        default: false
        }
    }
}
