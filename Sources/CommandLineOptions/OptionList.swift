import Block

/// A QEMU-style option string, `key=value,key=value`, where `,,` stands for a literal comma and a
/// bare first item may name an implied key (`-m 512` is `size=512`).
struct OptionList {
    private(set) var pairs: [(key: String, value: String)] = []


    /// `keyval` for QEMU's keyval syntax (`-blockdev`), where every item needs a `=`: keyval_parse_one
    /// refuses a bare `read-only`, which QemuOpts (`-device`, `-qmp`) reads as `read-only=on`.
    init(_ text: String, impliedKey: String? = nil, keyval: Bool = false) throws(CommandLineError) {
        for (index, item) in Self.split(text).enumerated() where !(item.isEmpty && index > 0) {
            if let equals = item.firstIndex(of: "=") {
                pairs.append((String(item[..<equals]), String(item[item.index(after: equals)...])))
            } else if index == 0, let impliedKey {
                pairs.append((impliedKey, item))
            } else if keyval {
                throw CommandLineError("Expected '=' after parameter '\(item)'")
            } else {
                pairs.append((item, "on"))
            }
        }
        // qemu_opts_create: a QemuOpts id (`-device`, `-drive`, `-chardev`) must be an identifier.
        if !keyval, let id = value("id"), !BlockdevOptions.isWellFormedID(id) {
            throw CommandLineError("Parameter 'id' expects an identifier")
        }
    }

    /// Splits at single commas; a doubled comma is an escaped one.
    private static func split(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if character == "," {
                if characters.first == "," {
                    characters.removeFirst()
                    current.append(",")
                } else {
                    items.append(current)
                    current = ""
                }
            } else {
                current.append(character)
            }
        }
        items.append(current)
        return items
    }

    func value(_ key: String) -> String? {
        pairs.last { $0.key == key }?.value
    }

    /// Rejects keys outside `allowed`, with QEMU's wording.
    func checkKeys(_ allowed: Set<String>, unexpected: (String) -> String = { "Parameter '\($0)' is unexpected" }) throws(CommandLineError) {
        if let bad = pairs.first(where: { !allowed.contains($0.key) }) {
            throw CommandLineError(unexpected(bad.key))
        }
    }

    func bool(_ key: String) throws(CommandLineError) -> Bool? {
        guard let text = value(key) else { return nil }
        switch text {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: throw CommandLineError("Parameter '\(key)' expects 'on' or 'off'")
        }
    }
}
