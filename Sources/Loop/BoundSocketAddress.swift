/// The address a listening socket really has: the numeric host and the port the kernel gave
/// (`tcp:localhost:0` becomes `127.0.0.1:40123`), and its family. What QEMU's
/// qio_channel_socket_get_local_address reports (query-migrate's `socket-address`).
public struct BoundSocketAddress: Sendable, Equatable {
    public let address: SocketAddress
    public let family: SocketFamily

    public init(address: SocketAddress, family: SocketFamily) {
        self.address = address
        self.family = family
    }
}
