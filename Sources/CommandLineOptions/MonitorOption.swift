import Block

/// `-qmp unix:PATH,server=on,wait=off` / `tcp:HOST:PORT,...`, and `-mon chardev=ID,mode=control`.
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

    static func parseMon(_ argument: String, chardevs: [String: ChardevSocket]) throws(CommandLineError) -> ChardevSocket {
        let options = try OptionList(argument, impliedKey: "chardev")
        try options.checkKeys(["chardev", "mode", "pretty", "id"])
        guard options.value("mode") == "control" else { throw CommandLineError("only mode=control monitors are supported") }
        guard let id = options.value("chardev"), let socket = chardevs[id] else {
            throw CommandLineError("chardev \"\(options.value("chardev") ?? "")\" not found")
        }
        return socket
    }

    /// `-qmp` monitors listen (server=on) and never wait for a client before the guest starts.
    private static func checkServer(_ options: OptionList) throws(CommandLineError) {
        guard try options.bool("server") == true else { throw CommandLineError("only server=on sockets are supported") }
        if try options.bool("wait") == true { throw CommandLineError("wait=on is not supported; use wait=off") }
    }
}
