/// Where a migration goes to or comes from: QEMU's `unix:PATH`, `tcp:HOST:PORT`, `exec:CMD`.
public enum MigrationUri: Sendable, Equatable, CustomStringConvertible {
    case unix(String)
    case tcp(host: String, port: String)
    case exec(String)

    /// nil for anything else (QEMU: "Parameter 'uri' expects a valid migration protocol").
    public init?(_ text: String) {
        if text.hasPrefix("unix:"), text.count > 5 {
            self = .unix(String(text.dropFirst(5)))
        } else if text.hasPrefix("exec:"), text.count > 5 {
            self = .exec(String(text.dropFirst(5)))
        } else if text.hasPrefix("tcp:"), let colon = text.lastIndex(of: ":"), colon > text.index(text.startIndex, offsetBy: 3) {
            var host = String(text[text.index(text.startIndex, offsetBy: 4)..<colon])
            let port = String(text[text.index(after: colon)...])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !port.isEmpty, port.allSatisfy(\.isNumber) else { return nil }
            self = .tcp(host: host.isEmpty ? "0.0.0.0" : host, port: port)
        } else {
            return nil
        }
    }

    public var isSocket: Bool {
        if case .exec = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): "tcp:\(host):\(port)"
        case .exec(let command): "exec:\(command)"
        }
    }
}
