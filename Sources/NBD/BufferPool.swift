/// Page-aligned request buffers, kept for reuse: a fresh 256 KiB allocation is an mmap and
/// page faults on every request. One per server, used on its loop thread only.
final class BufferPool {    /// Free buffers by size class (a power of two).
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0

    deinit { for pointers in free.values { for pointer in pointers { pointer.deallocate() } } }
    private let limit = 64 << 20

    /// A buffer of at least `count` bytes (its class size).
    func take(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let size = Self.sizeClass(count)
        if let pointer = free[size]?.popLast() {
            cachedBytes -= size
            return UnsafeMutableRawBufferPointer(start: pointer, count: size)
        }
        return .allocate(byteCount: size, alignment: 4096)
    }

    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        guard cachedBytes + buffer.count <= limit, buffer.count == Self.sizeClass(buffer.count) else {
            return buffer.deallocate()
        }
        cachedBytes += buffer.count
        free[buffer.count, default: []].append(buffer.baseAddress!)
    }

    private static func sizeClass(_ count: Int) -> Int {
        max(4096, 1 << (Int.bitWidth - (max(count, 1) - 1).leadingZeroBitCount))
    }
}
