import Glibc

/// Reads a blkdebug config file (QEMU's qemu_config_parse with blkdebug's two groups, then
/// add_rule): `[inject-error]` and `[set-state]` sections (optionally `[group "id"]`) of
/// `key = "value"` lines; `#` comments and empty lines are skipped. Like QEMU's sscanf-based
/// reader, a line that is a word without a quoted value sets that word to "".
public enum BlkdebugConfigParser {
    private struct Group {
        var name: String
        var line: Int
        var entries: [(key: String, value: String, line: Int)] = []
    }

    private static let injectErrorKeys: Set<String> = ["event", "state", "errno", "sector", "once", "immediately", "iotype"]
    private static let setStateKeys: Set<String> = ["event", "state", "new_state"]

    /// The rules in the file's text, inject-error rules first (read_config's order).
    public static func parse(_ text: String) throws(BlkdebugConfigError) -> [BlkdebugRule] {
        let groups = try groups(in: text)
        for group in groups { try check(group) }
        var rules: [BlkdebugRule] = []
        for group in groups where group.name == "inject-error" { rules.append(try injectError(group)) }
        for group in groups where group.name == "set-state" { rules.append(try setState(group)) }
        return rules
    }

    /// Reads the file at `path` (blkdebug_open's read_config).
    public static func parseFile(_ path: String) throws(BlkdebugConfigError) -> [BlkdebugRule] {
        guard let file = fopen(path, "r") else {
            throw BlkdebugConfigError(line: 0, "Could not read blkdebug config file: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            bytes += chunk[0..<count]
            // A config file is a handful of lines; a huge one is not one.
            if bytes.count > 1 << 20 { throw BlkdebugConfigError(line: 0, "Could not parse blkdebug config file") }
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }

    private static func groups(in text: String) throws(BlkdebugConfigError) -> [Group] {
        var groups: [Group] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                if let name = groupName(line) { groups.append(Group(name: name, line: number)) }
                continue
            }
            let trimmed = line.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
            guard let key = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).first else {
                throw BlkdebugConfigError(line: number, "parse error")
            }
            guard !groups.isEmpty else { throw BlkdebugConfigError(line: number, "no group defined") }
            groups[groups.count - 1].entries.append((String(key.prefix(63)), quotedValue(after: key, in: trimmed), number))
        }
        return groups
    }

    /// `[name]` or `[name "id"]` (the id is not used by blkdebug); nil when no name is there.
    private static func groupName(_ line: Substring) -> String? {
        let body = line.dropFirst()
        let name = body.prefix { $0 != "]" && $0 != " " && $0 != "\t" }
        return name.isEmpty ? nil : String(name.prefix(63))
    }

    /// The text between the quotes of ` = "value"` after the key, or "" when the line has no such part.
    private static func quotedValue(after key: Substring, in line: Substring) -> String {
        var rest = line.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
        guard rest.first == "=" else { return "" }
        rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
        guard rest.first == "\"" else { return "" }
        return String(rest.dropFirst().prefix { $0 != "\"" }.prefix(1023))
    }

    /// qemu_opts_from_qdict: the group must be one of blkdebug's, each key one it has, each value of its type.
    private static func check(_ group: Group) throws(BlkdebugConfigError) {
        let keys: Set<String>
        switch group.name {
        case "inject-error": keys = injectErrorKeys
        case "set-state": keys = setStateKeys
        default: throw BlkdebugConfigError(line: group.line, "There is no option group '\(group.name)'")
        }
        for entry in group.entries {
            guard keys.contains(entry.key) else { throw BlkdebugConfigError(line: entry.line, "Invalid parameter '\(entry.key)'") }
            switch entry.key {
            case "state", "errno", "sector", "new_state":
                if OptionReader.integer(entry.value) == nil {
                    throw BlkdebugConfigError(line: entry.line, "Parameter '\(entry.key)' expects a number")
                }
            case "once", "immediately":
                if boolValue(entry.value) == nil {
                    throw BlkdebugConfigError(line: entry.line, "Parameter '\(entry.key)' expects 'on' or 'off'")
                }
            default: break
            }
        }
    }

    private static func boolValue(_ text: String) -> Bool? {
        switch text {
        case "on", "yes", "true", "y": true
        case "off", "no", "false", "n": false
        default: nil
        }
    }

    /// The last value a group gives `key` (QemuOpts keeps the last).
    private static func value(_ key: String, in group: Group) -> (value: String, line: Int)? {
        group.entries.last { $0.key == key }.map { ($0.value, $0.line) }
    }

    private static func number(_ key: String, in group: Group) -> Int64? {
        value(key, in: group).flatMap { OptionReader.integer($0.value) }
    }

    /// add_rule's event lookup.
    private static func event(in group: Group) throws(BlkdebugConfigError) -> BlkdebugEvent {
        guard let (name, line) = value("event", in: group) else { throw BlkdebugConfigError(line: group.line, "Missing event name for rule") }
        guard let event = BlkdebugEvent(rawValue: name) else { throw BlkdebugConfigError(line: line, "invalid parameter value: \(name)") }
        return event
    }

    private static func injectError(_ group: Group) throws(BlkdebugConfigError) -> BlkdebugRule {
        let event = try event(in: group)
        var ioType: BlkdebugIoType?
        if let (name, line) = value("iotype", in: group) {
            guard let type = BlkdebugIoType(rawValue: name) else { throw BlkdebugConfigError(line: line, "invalid parameter value: \(name)") }
            ioType = type
        }
        let errno = number("errno", in: group).map { Int32(truncatingIfNeeded: $0) } ?? EIO
        return .injectError(event, state: number("state", in: group) ?? 0, errno: errno, sector: number("sector", in: group),
                            ioType: ioType, once: value("once", in: group).flatMap { boolValue($0.value) } ?? false,
                            immediately: value("immediately", in: group).flatMap { boolValue($0.value) } ?? false)
    }

    private static func setState(_ group: Group) throws(BlkdebugConfigError) -> BlkdebugRule {
        .setState(try event(in: group), state: number("state", in: group) ?? 0, newState: number("new_state", in: group) ?? 0)
    }
}
