import Loop

/// Where a migration goes to or comes from: QEMU's `unix:PATH`, `tcp:HOST:PORT`, `exec:CMD`.
public enum MigrationUri: Sendable, Equatable, CustomStringConvertible {
    case socket(SocketAddress)
    case exec(String)

    /// nil when `text` names no protocol svmm knows (the caller words that: `migrate` and
    /// `-incoming` say it differently); a known protocol with a malformed address is an error in
    /// QEMU's words (socket_parse, inet_parse). The port is not checked here: as in QEMU, a
    /// service name that does not resolve fails when the socket is opened.
    public static func parse(_ text: String) throws(MigrationError) -> MigrationUri? {
        if text.hasPrefix("exec:") { return .exec(String(text.dropFirst(5))) }
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw MigrationError("invalid Unix socket address") }
            return .socket(.unix(path: path))
        }
        if text.hasPrefix("tcp:") { return .socket(try inetAddress(String(text.dropFirst(4)))) }
        return nil
    }

    /// inet_parse's three forms, `:PORT`, `[V6HOST]:PORT`, `HOST:PORT`, with its limits (a host
    /// of at most 64 characters, a port of at most 32). QEMU's options after the port (`,to=`,
    /// `,ipv4`, `,ipv6`, `,keep-alive`) are refused rather than ignored.
    static func inetAddress(_ text: String) throws(MigrationError) -> SocketAddress {
        let host: Substring
        let rest: Substring
        let failure: String
        if text.hasPrefix(":") {
            (host, rest, failure) = ("", text.dropFirst(), "error parsing port in address '\(text)'")
        } else if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            failure = "error parsing IPv6 address '\(text)'"
            guard !host.isEmpty, after.hasPrefix(":") else { throw MigrationError(failure) }
            rest = after.dropFirst()
        } else if text.hasPrefix("[") {
            throw MigrationError("error parsing IPv6 address '\(text)'")
        } else {
            failure = "error parsing address '\(text)'"
            guard let colon = text.firstIndex(of: ":") else { throw MigrationError(failure) }
            (host, rest) = (text[..<colon], text[text.index(after: colon)...])
            guard !host.isEmpty else { throw MigrationError(failure) }
        }
        let port = rest.prefix { $0 != "," }
        guard host.utf8.count <= 64, !port.isEmpty else { throw MigrationError(failure) }
        guard port.utf8.count == rest.utf8.count, port.utf8.count <= 32 else {
            throw MigrationError("svmm does not support socket address options in '\(text)'")
        }
        return .inet(host: String(host), port: String(port))
    }

    public var isSocket: Bool {
        if case .exec = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .socket(.unix(let path)): "unix:\(path)"
        case .socket(.inet(let host, let port)): host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        case .exec(let command): "exec:\(command)"
        }
    }
}
