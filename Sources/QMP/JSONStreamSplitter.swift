/// Cuts a QMP byte stream into complete top-level JSON texts, as QEMU's json-streamer does:
/// braces and brackets are counted outside strings; a bare token ends at whitespace.
struct JSONStreamSplitter {
    /// QEMU refuses tokens over 64 MiB; so do we, and start afresh.
    static let maxPending = 64 << 20

    private var pending: [UInt8] = []
    private var depth = 0
    private var inString: UInt8? = nil
    private var escaped = false
    private var scanned = 0

    enum Piece {
        case text([UInt8])
        case tooLarge
    }

    mutating func feed(_ bytes: some Collection<UInt8>) -> [Piece] {
        pending.append(contentsOf: bytes)
        var pieces: [Piece] = []
        while scanned < pending.count {
            let byte = pending[scanned]
            scanned += 1
            if consume(byte) {
                let text = Array(pending[..<scanned])
                pending.removeFirst(scanned)
                scanned = 0
                if !text.allSatisfy(Self.isWhitespace) { pieces.append(.text(text)) }
            }
        }
        if pending.count > Self.maxPending {
            pending.removeAll()
            scanned = 0
            depth = 0
            inString = nil
            pieces.append(.tooLarge)
        }
        return pieces
    }

    static func isWhitespace(_ byte: UInt8) -> Bool { [0x20, 0x09, 0x0a, 0x0d].contains(byte) }

    /// Returns true when `byte` completes a top-level value.
    private mutating func consume(_ byte: UInt8) -> Bool {
        if let quote = inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == quote { inString = nil }
            return false
        }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            inString = byte
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            if depth <= 0 {
                depth = 0
                return true
            }
        case 0x0a where depth == 0:
            return true  // a bare token (or garbage) on its own line
        default:
            break
        }
        return false
    }
}
