import Block
import Machine

/// A `-chardev socket,...`: a listening monitor (`server=on`) or a client connection, which is
/// QEMU's default without `server=on` (`path=P` / `host=H,port=N` is connected to) and what `fd=N`
/// (an inherited, connected socket) is. The iotests harness listens and starts QEMU as a client.
enum ChardevSocket {
    case listening(SocketAddress)
    case client(MachineConfig.ChardevClient)

    static func parse(_ argument: String) throws(CommandLineError) -> (id: String, socket: ChardevSocket) {
        let options = try OptionList(argument, impliedKey: "backend")
        guard options.value("backend") == "socket" else {
            throw CommandLineError("only socket chardevs are supported (for -mon)")
        }
        try options.checkKeys(["backend", "id", "path", "host", "port", "server", "wait", "nowait", "fd"])
        guard let id = options.value("id") else { throw CommandLineError("Parameter 'id' is missing") }
        if let fdText = options.value("fd") {
            // qemu_chr_parse_socket: an fd is a client connection; its number is checked when used.
            guard let fd = Int32(fdText), fd >= 0 else { throw CommandLineError("Unable to parse FD number \(fdText)") }
            return (id, .client(.init(connection: .inheritedFd(fd), source: "-chardev \(argument)")))
        }
        let address = try self.address(options)
        if try options.bool("server") == true {
            if try options.bool("wait") == true { throw CommandLineError("wait=on is not supported; use wait=off") }
            return (id, .listening(address))
        }
        if options.value("wait") != nil || options.value("nowait") != nil {
            throw CommandLineError("'wait' option is incompatible with socket in client connect mode")
        }
        return (id, .client(.init(connection: .connect(address), source: "-chardev \(argument)")))
    }

    private static func address(_ options: OptionList) throws(CommandLineError) -> SocketAddress {
        if let path = options.value("path") { return .unix(path: path) }
        guard let port = options.value("port") else { throw CommandLineError("chardev: socket: no host given") }
        return .inet(host: options.value("host") ?? "0.0.0.0", port: port)
    }
}
