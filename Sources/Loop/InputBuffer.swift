import Glibc

/// Bytes read from a socket and not parsed yet.
public final class InputBuffer {
    private let storage: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0

    public init(capacity: Int) {
        storage = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    public var capacity: Int { storage.count }
    public var count: Int { end - start }
    public var hasSpace: Bool { count < capacity }

    /// One `read` into the free space (after moving the unread bytes to the front).
    public func fill(from fd: Int32) -> SocketReadResult {
        compact()
        guard end < storage.count else { return .wouldBlock }
        let count = read(fd, storage.baseAddress! + end, storage.count - end)
        let result = SocketReadResult(count, errno: errno)
        if case .bytes(let n) = result { end += n }
        return result
    }

    /// Removes and returns the next `count` bytes (the caller checked they are there).
    public func take(_ count: Int) -> [UInt8] {
        precondition(count <= self.count)
        defer { start += count }
        return Array(UnsafeRawBufferPointer(rebasing: storage[start..<start + count]))
    }

    /// The next `count` bytes, left in the buffer.
    public func peek(_ count: Int) -> [UInt8] {
        precondition(count <= self.count)
        return Array(UnsafeRawBufferPointer(rebasing: storage[start..<start + count]))
    }

    /// The unread bytes, for a reader that copies them out itself (then `skip`s what it took).
    public func withUnreadBytes<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        body(UnsafeRawBufferPointer(rebasing: storage[start..<end]))
    }

    /// Drops up to `count` bytes; returns how many.
    public func skip(_ wanted: Int) -> Int {
        let n = min(wanted, count)
        start += n
        return n
    }

    private func compact() {
        if start == end {
            start = 0
            end = 0
        } else if start > 0 && end == storage.count {
            let n = count
            storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: n)
            start = 0
            end = n
        }
    }
}
