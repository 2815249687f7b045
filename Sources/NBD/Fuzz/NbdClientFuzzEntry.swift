import Block
import Glibc

/// The NBD client's fuzz entry (`make fuzz`, target `nbd-client`): the input is everything a
/// server sends, the handshake's greeting and option replies, then replies to the requests a
/// guest's first I/O makes (read, write, flush, write-zeroes, trim), handles 1, 2, 3, ...
public enum NbdClientFuzzEntry {
    /// Never traps and never spins: a hostile server fails the open or the requests.
    public static func fuzz(_ data: [UInt8]) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else { return }
        let (client, server) = (pair[0], pair[1])
        defer { close(server) }
        // All of the server's side is in the socket before the client reads: the blocking
        // handshake then never waits, it reads data or the end of the stream.
        var buffer = 1 << 20
        setsockopt(server, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        let sent = data.withUnsafeBytes { send(server, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == data.count else { close(client); return }
        shutdown(server, Int32(SHUT_WR))
        BlockingSocket(fd: client).setReceiveTimeout(seconds: 5)

        var handshake = NbdClientHandshake(fd: client, exportName: "exp")
        guard let info = try? handshake.run() else { close(client); return }
        Socket.setNonBlocking(client)
        let loop = FuzzLoop()
        guard let driver = try? NbdClientDriver(options: NbdClientOptions(server: .unix(path: "fuzz")), info: info, fd: client, watcher: loop) else {
            close(client)
            return
        }
        let count = Int(min(driver.length, 4096))
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 4096)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        let vector = IoVector(UnsafeMutableRawBufferPointer(rebasing: memory[..<count]))
        driver.read(at: 0, into: vector, completion: { _ in })
        driver.write(at: 0, from: vector, completion: { _ in })
        driver.flush(completion: { _ in })
        driver.writeZeroes(at: 0, length: Int64(count), mayUnmap: true, completion: { _ in })
        driver.discard(at: 0, length: Int64(count), completion: { _ in })
        var sink = [UInt8](repeating: 0, count: 1 << 16)
        loop.runUntilIdle { while recv(server, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {} }
        driver.close()
        loop.runUntilIdle()
    }
}
