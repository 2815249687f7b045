import Block
import Glibc

/// The NBD server's fuzz entry (`make fuzz`, target `nbd-server`): the input is everything a
/// client sends, from the client flags through options to transmission requests, on a fresh
/// server exporting a writable 1 MiB null-co disk as "exp".
public enum NbdServerFuzzEntry {
    /// Never traps and never spins: a hostile client gets an error reply or is dropped.
    public static func fuzz(_ data: [UInt8]) {
        let loop = FuzzLoop()
        let graph = BlockGraph()
        let node = BlockNode(nodeName: "disk", driverName: "null-co", driver: NullDriver(size: 1 << 20, readZeroes: true), readOnly: false)
        let backend = BlockBackend(graph: graph, perm: [.consistentRead, .write], shared: .all)
        let path = "/tmp/svmm-fuzz-nbd-\(getpid()).sock"
        guard (try? graph.add(node)) != nil, (try? backend.insert(node)) != nil,
              let server = try? NbdServer(address: .unix(path: path), watcher: loop),
              (try? server.addExport(NbdExport(name: "exp", backend: backend, writable: true, description: "fuzz"))) != nil
        else { return }
        defer {
            server.stop()
            loop.runUntilIdle()
            unlink(path)
        }
        guard let client = try? Socket.connect(.unix(path: path)) else { return }
        defer { close(client) }
        Socket.setNonBlocking(client)
        var unsent = data[...]
        var sink = [UInt8](repeating: 0, count: 1 << 16)
        // The peer: send what fits, read and drop the server's answers, and end its side once
        // all is sent, so the server sees the hang-up and the input is played out.
        loop.runUntilIdle {
            while !unsent.isEmpty {
                let sent = unsent.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { break }
                unsent = unsent.dropFirst(sent)
                if unsent.isEmpty { shutdown(client, Int32(SHUT_WR)) }
            }
            if data.isEmpty { shutdown(client, Int32(SHUT_WR)) }
            while recv(client, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
        }
    }
}
