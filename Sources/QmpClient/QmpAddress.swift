/// Where a QMP monitor (or an NBD server) listens: a unix socket path or a TCP host and port, in
/// the spellings QEMU's `-qmp` and `migrate` use (`unix:PATH`, `tcp:HOST:PORT`, or a bare path).
public enum QmpAddress: Equatable, Sendable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: String)

    /// Parses `unix:PATH`, `tcp:HOST:PORT` (`tcp:[::1]:4444` for IPv6) or a bare path; nil when
    /// the text names neither (an empty path, a TCP address without a port).
    public init?(parsing text: String) {
        if text.hasPrefix("tcp:") {
            guard let (host, port) = Self.splitHostPort(String(text.dropFirst(4))) else { return nil }
            self = .tcp(host: host, port: port)
        } else {
            let path = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
            guard !path.isEmpty else { return nil }
            self = .unix(path: path)
        }
    }

    /// `HOST:PORT` with the port a decimal number 1-65535, the host possibly in brackets.
    private static func splitHostPort(_ text: String) -> (String, String)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let port = String(text[text.index(after: colon)...])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number), port.allSatisfy(\.isASCII) else {
            return nil
        }
        return (host, port)
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}
