/// `-blockdev driver=nbd,server.type=unix,server.path=P,export=E` (or inet host/port).
public struct NbdClientOptions: Equatable, Sendable {
    public var server: SocketAddress
    public var export: String

    public init(server: SocketAddress, export: String = "") {
        self.server = server
        self.export = export
    }

    init(reader: inout OptionReader) throws(BlockError) {
        guard var serverReader = try reader.object("server") else {
            throw BlockError("Parameter '\(reader.path("server"))' is missing")
        }
        server = try SocketAddress(reader: &serverReader)
        export = try reader.string("export") ?? ""
        if let delay = try reader.int("reconnect-delay"), UInt32(exactly: delay) == nil {
            throw BlockError("Parameter '\(reader.path("reconnect-delay"))' expects uint32_t")
        }
        if try reader.string("tls-creds") != nil { throw BlockError("TLS is not supported by svmm's NBD client") }
    }
}
