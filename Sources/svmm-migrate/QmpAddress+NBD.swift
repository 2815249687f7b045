import QmpClient
import QmpJSON

/// The same address in the two QAPI spellings the flow needs.
extension QmpAddress {
    /// `nbd-server-start`'s `addr` (SocketAddressLegacy, the wrapped union).
    var legacySocketAddress: JSONValue {
        switch self {
        case .unix(let path): .members(["type": .string("unix"), "data": .members(["path": .string(path)])])
        case .tcp(let host, let port): .members(["type": .string("inet"), "data": .members(["host": .string(host), "port": .string(port)])])
        }
    }

    /// `blockdev-add driver=nbd`'s `server` (SocketAddress, the flat union).
    var flatSocketAddress: JSONValue {
        switch self {
        case .unix(let path): .members(["type": .string("unix"), "path": .string(path)])
        case .tcp(let host, let port): .members(["type": .string("inet"), "host": .string(host), "port": .string(port)])
        }
    }
}
