import Foundation
import Glibc
import Loop
import Synchronization
import Testing

/// Loop's buffered channel on a socket pair and a real EventLoop: output a slow peer does not
/// take waits in the queue (the loop is never blocked), input is buffered for the owner's parser,
/// and the peer's end of file closes the channel once.
@Suite struct SocketChannelTests {
    /// The loop-owned side of the test: the channel and what it saw (loop thread only).
    final class Endpoint: @unchecked Sendable {
        var channel: SocketChannel?
        var received: [UInt8] = []
        var closedReasons: [String] = []
    }

    private static func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
        Socket.setNonBlocking(fds[0])
        return (fds[0], fds[1])
    }

    private static func waitUntil(_ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if try condition() { return true }
            usleep(2000)
        }
        return false
    }

    @Test func inputReachesTheOwnerAndEndOfFileClosesOnce() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let (mine, peer) = Self.socketPair()
        let endpoint = Endpoint()
        try loop.onLoop {
            let channel = try SocketChannel(fd: mine, watcher: loop, blockLayer: false, inputCapacity: 16)
            // A parser as NBD's: take what is buffered, read until the socket has no more, and
            // close on the reason the read gives at the end of file.
            channel.onReadable = {
                while true {
                    endpoint.received += channel.input.take(channel.input.count)
                    switch channel.fillOnce() {
                    case nil: continue
                    case .closed(let reason)?: return channel.close(reason: reason)
                    case .waiting?, .ready?: return
                    }
                }
            }
            channel.onClosed = { endpoint.closedReasons.append($0) }
            endpoint.channel = channel
        }
        let message = Array("a message longer than the 16-byte input buffer".utf8)
        #expect(write(peer, message, message.count) == message.count)
        #expect(try Self.waitUntil { try loop.onLoop { endpoint.received.count } == message.count })
        #expect(try loop.onLoop { endpoint.received } == message)
        close(peer)
        #expect(try Self.waitUntil { try loop.onLoop { endpoint.closedReasons } == ["Unexpected end-of-file"] })
        #expect(try loop.onLoop { endpoint.channel?.isClosed } == true)
    }

    @Test func outputThePeerDoesNotTakeWaitsInTheQueue() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let (mine, peer) = Self.socketPair()
        defer { close(peer) }
        let endpoint = Endpoint()
        let drained = Atomic<Int>(0)
        let size = 8 << 20  // far more than a socket buffer holds
        try loop.onLoop {
            let channel = try SocketChannel(fd: mine, watcher: loop, blockLayer: false)
            channel.onDrained = { drained.add(1, ordering: .relaxed) }
            endpoint.channel = channel
            channel.send([UInt8](repeating: 0x5a, count: size))
        }
        let pending = try loop.onLoop { endpoint.channel?.pendingOutputBytes ?? 0 }
        #expect(pending > 0 && pending < size)
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while total < size {
            let n = read(peer, &buffer, buffer.count)
            guard n > 0 else { break }
            #expect(buffer[..<n].allSatisfy { $0 == 0x5a })
            total += n
        }
        #expect(total == size)
        #expect(try Self.waitUntil { drained.load(ordering: .relaxed) == 1 })
        #expect(try loop.onLoop { endpoint.channel?.pendingOutputBytes } == 0)
        try loop.onLoop { endpoint.channel?.close(reason: "done") }
    }

    /// What QMP needs: after the peer's end of file (it shut down its sending side) the channel
    /// stays open, stops watching input, and the answer to what was sent still reaches the peer;
    /// an owner asking for a turn gets `onTurn` on the next loop turn, once per turn asked.
    @Test func afterThePeersEndOfFileAnswersStillGoOutAndTurnsComeWhenAsked() throws {
        let loop = try EventLoop.started()
        defer { loop.stop() }
        let (mine, peer) = Self.socketPair()
        defer { close(peer) }
        let endpoint = Endpoint()
        let turns = Atomic<Int>(0)
        try loop.onLoop {
            let channel = try SocketChannel(fd: mine, watcher: loop, blockLayer: false, inputCapacity: 64)
            channel.onReadable = {
                while channel.fillOnce() == nil {}
                endpoint.received += channel.input.take(channel.input.count)
                if channel.inputEnded { channel.send(Array("answer to \(endpoint.received.count) bytes".utf8)) }
            }
            channel.onTurn = {
                turns.add(1, ordering: .relaxed)
                channel.wantsTurn = false
            }
            channel.onClosed = { endpoint.closedReasons.append($0) }
            endpoint.channel = channel
        }
        #expect(write(peer, "request", 7) == 7)
        shutdown(peer, Int32(SHUT_WR))
        var reply = [UInt8](repeating: 0, count: 64)
        let count = read(peer, &reply, reply.count)
        #expect(count > 0 && String(decoding: reply[..<max(count, 0)], as: UTF8.self) == "answer to 7 bytes")
        #expect(try loop.onLoop { (endpoint.channel?.inputEnded, endpoint.channel?.isClosed, endpoint.closedReasons) } == (true, false, []))
        try loop.onLoop { endpoint.channel?.wantsTurn = true }
        #expect(try Self.waitUntil { turns.load(ordering: .relaxed) == 1 })
        usleep(50_000)
        #expect(turns.load(ordering: .relaxed) == 1)
        try loop.onLoop { endpoint.channel?.close(reason: "done") }
        #expect(try loop.onLoop { endpoint.closedReasons } == ["done"])
    }
}
