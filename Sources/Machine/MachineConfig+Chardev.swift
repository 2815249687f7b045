import Block

extension MachineConfig {
    /// A `-chardev socket` (or `-qtest unix:...`) that is not a listening monitor: QEMU connects to
    /// `path=`/`host=,port=` when `server=on` is absent, and `fd=N` is an inherited, connected socket.
    public enum ChardevConnection: Equatable, Sendable {
        case connect(SocketAddress)
        case inheritedFd(Int32)
    }

    /// Such a connection and the option that asked for it (`-chardev socket,id=mon,path=P`), for errors.
    public struct ChardevClient: Equatable, Sendable {
        public var connection: ChardevConnection
        public var source: String
        public init(connection: ChardevConnection, source: String) {
            self.connection = connection
            self.source = source
        }
    }
}
