/// QAPI's SocketAddress (the flat form `blockdev-add` and `-blockdev` use):
/// `{type: "inet", host, port}` or `{type: "unix", path}`. What `Socket` listens on and connects to;
/// the block layer reads it from options (`SocketAddress+Options`), the command line and QMP build it.
public enum SocketAddress: Hashable, Sendable, CustomStringConvertible {
    case inet(host: String, port: String)
    case unix(path: String)

    public var description: String {
        switch self {
        case .inet(let host, let port): "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}
