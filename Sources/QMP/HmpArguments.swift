/// HMP's argument reader (monitor_parse_arguments' get_str and flags) for the commands svmm has:
/// words separated by spaces, or double-quoted strings with `\\`, `\"`, `\'`, `\n` and `\r` escapes.
struct HmpArguments {
    private var rest: Substring

    init(_ text: Substring) { rest = text }

    /// The monitor's answer to a line it cannot parse, before "Try "help CMD" for more information".
    struct Failure: Error {
        let message: String
    }

    mutating func skipSpaces() { rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "\n" } }

    /// An optional `-X` flag (HMP's "-X" argument types).
    mutating func flag(_ letter: Character) -> Bool {
        skipSpaces()
        guard rest.hasPrefix("-\(letter)") else { return false }
        let after = rest.dropFirst(2)
        guard after.isEmpty || after.first == " " || after.first == "\t" else { return false }
        rest = after
        return true
    }

    /// get_str: a word or a quoted string; nil when there is none.
    mutating func string() throws(Failure) -> String? {
        skipSpaces()
        guard let first = rest.first else { return nil }
        guard first == "\"" else {
            let word = rest.prefix { $0 != " " && $0 != "\t" && $0 != "\n" }
            rest = rest.dropFirst(word.count)
            return String(word)
        }
        var text = ""
        var index = rest.index(after: rest.startIndex)
        while index < rest.endIndex, rest[index] != "\"" {
            var character = rest[index]
            if character == "\\" {
                index = rest.index(after: index)
                guard index < rest.endIndex else { throw Failure(message: "unterminated string") }
                switch rest[index] {
                case "\\", "'", "\"": character = rest[index]
                case "n": character = "\n"
                case "r": character = "\r"
                default: throw Failure(message: "unsupported escape code: '\\\(rest[index])'")
                }
            }
            text.append(character)
            index = rest.index(after: index)
        }
        guard index < rest.endIndex else { throw Failure(message: "unterminated string") }
        rest = rest[rest.index(after: index)...]
        return text
    }

    var isAtEnd: Bool {
        rest.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" }
    }
}
