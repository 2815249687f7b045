import Block

/// `-qmp unix:PATH,server=on,wait=off` / `tcp:HOST:PORT,...`, and `-chardev socket,...` with `-mon`.
enum MonitorOption {
    static func parseQmp(_ argument: String) throws(CommandLineError) -> SocketAddress {
        let options = try OptionList(argument, impliedKey: "address")
        try options.checkKeys(["address", "server", "wait", "nowait"])
        try checkServer(options)
        guard let address = options.value("address") else { throw CommandLineError("missing socket address") }
        if address.hasPrefix("unix:") { return .unix(path: String(address.dropFirst(5))) }
        if address.hasPrefix("tcp:") {
            let hostPort = address.dropFirst(4)
            guard let colon = hostPort.lastIndex(of: ":") else { throw CommandLineError("tcp address needs HOST:PORT") }
            let host = String(hostPort[..<colon])
            return .inet(host: host.isEmpty ? "0.0.0.0" : host, port: String(hostPort[hostPort.index(after: colon)...]))
        }
        throw CommandLineError("'\(address)' is not a valid char driver")
    }

    static func parseChardev(_ argument: String) throws(CommandLineError) -> (String, SocketAddress) {
        let options = try OptionList(argument, impliedKey: "backend")
        guard options.value("backend") == "socket" else {
            throw CommandLineError("only socket chardevs are supported (for -mon)")
        }
        try options.checkKeys(["backend", "id", "path", "host", "port", "server", "wait", "nowait"])
        guard let id = options.value("id") else { throw CommandLineError("Parameter 'id' is missing") }
        try checkServer(options)
        if let path = options.value("path") { return (id, .unix(path: path)) }
        guard let port = options.value("port") else { throw CommandLineError("chardev: socket: no host given") }
        return (id, .inet(host: options.value("host") ?? "0.0.0.0", port: port))
    }

    static func parseMon(_ argument: String, chardevs: [String: SocketAddress]) throws(CommandLineError) -> SocketAddress {
        let options = try OptionList(argument, impliedKey: "chardev")
        try options.checkKeys(["chardev", "mode", "pretty", "id"])
        guard options.value("mode") == "control" else { throw CommandLineError("only mode=control monitors are supported") }
        guard let id = options.value("chardev"), let address = chardevs[id] else {
            throw CommandLineError("chardev \"\(options.value("chardev") ?? "")\" not found")
        }
        return address
    }

    /// svmm's monitors listen (server=on) and never wait for a client before the guest starts.
    private static func checkServer(_ options: OptionList) throws(CommandLineError) {
        guard try options.bool("server") == true else { throw CommandLineError("only server=on sockets are supported") }
        if try options.bool("wait") == true { throw CommandLineError("wait=on is not supported; use wait=off") }
    }
}
