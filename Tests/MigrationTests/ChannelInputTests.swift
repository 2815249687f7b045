import Glibc
import Testing
@testable import Migration

/// The destination's read-ahead (ChannelInput over ReadAheadBuffer): small reads come from one
/// read of the channel, page reads take what was read ahead first and the rest straight from
/// the channel, and every byte arrives once and in order.
@Suite struct ChannelInputTests {
    /// A socket pair whose one end holds `bytes` and is shut for writing; the other as a channel.
    static func channel(holding bytes: [UInt8]) -> MigrationChannel {
        var ends: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        let writer = ends[1]
        var size = Int32(bytes.count * 2)
        setsockopt(writer, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(ends[0], SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let count = write(writer, raw.baseAddress! + done, raw.count - done)
                precondition(count > 0, "socketpair write")
                done += count
            }
        }
        close(writer)
        return MigrationChannel.accepted(ends[0])
    }

    static let pattern: [UInt8] = (0..<(300 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }

    @Test func smallReadsThenPagesAcrossTheReadAheadGetEveryByteInOrder() throws {
        let channel = Self.channel(holding: Self.pattern)
        defer { channel.close() }
        var input = ChannelInput(channel: channel)
        var received: [UInt8] = []
        // Record-header-sized reads: the first fills the read-ahead buffer (64 KiB here).
        for size in [2, 15, 4, 1280, 4] {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
            defer { buffer.deallocate() }
            #expect(try input.read(into: buffer) == size)
            received += buffer
        }
        // Pages: the first 63 KiB or so come from the buffer, the rest from the channel.
        let pages = (0..<40).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096) }
        defer { pages.forEach { $0.deallocate() } }
        #expect(try input.read(into: pages) == 40 * 4096)
        for page in pages { received += page }
        // The rest, in reads larger than the buffer (straight from the channel) and smaller.
        while true {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: received.count % 2 == 0 ? 100_000 : 777, alignment: 1)
            defer { buffer.deallocate() }
            let count = try input.read(into: buffer)
            if count == 0 { break }
            received += buffer[..<count]
        }
        #expect(received == Self.pattern)
    }

    @Test func pagesPastTheEndOfTheStreamReturnWhatCame() throws {
        let channel = Self.channel(holding: Array(Self.pattern[..<10_000]))
        defer { channel.close() }
        var input = ChannelInput(channel: channel)
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { header.deallocate() }
        #expect(try input.read(into: header) == 16)
        let pages = (0..<4).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096) }
        defer { pages.forEach { $0.deallocate() } }
        #expect(try input.read(into: pages) == 10_000 - 16)
        #expect(Array(pages[0]) == Array(Self.pattern[16..<(16 + 4096)]))
    }
}
