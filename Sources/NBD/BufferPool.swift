import Glibc

/// Page-aligned request buffers, kept for reuse: a fresh 256 KiB allocation is an mmap and
/// page faults on every request. One per server, used on its loop thread only.
///
/// Bounded, and it gives memory back: buffers of `mappedFrom` bytes or more are mapped with mmap
/// and unmapped when not kept, so the kernel gets them back at once (through malloc, with svmm's
/// raised M_MMAP_THRESHOLD and M_TRIM_THRESHOLD, freed 8 MiB buffers would stay in the heap);
/// while requests are in flight at most `busyLimit` bytes are kept, and when the last buffer
/// comes back only `idleLimit` bytes stay (QEMU's NBD server allocates per request and keeps
/// nothing).
final class BufferPool {
    /// Free buffers by size class (a power of two).
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private(set) var cachedBytes = 0
    /// Buffers taken and not given back yet.
    private(set) var outstanding = 0
    let busyLimit: Int
    let idleLimit: Int
    static let mappedFrom = 1 << 20

    init(busyLimit: Int = 16 << 20, idleLimit: Int = 2 << 20) {
        self.busyLimit = busyLimit
        self.idleLimit = idleLimit
    }

    deinit {
        for (size, pointers) in free { for pointer in pointers { Self.release(pointer, size: size) } }
    }

    /// A buffer of at least `count` bytes (its class size).
    func take(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let size = Self.sizeClass(count)
        outstanding += 1
        if let pointer = free[size]?.popLast() {
            cachedBytes -= size
            return UnsafeMutableRawBufferPointer(start: pointer, count: size)
        }
        return UnsafeMutableRawBufferPointer(start: Self.allocate(size), count: size)
    }

    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        outstanding -= 1
        let size = buffer.count
        if cachedBytes + size <= busyLimit, size == Self.sizeClass(size) {
            cachedBytes += size
            free[size, default: []].append(buffer.baseAddress!)
        } else {
            Self.release(buffer.baseAddress!, size: size)
        }
        if outstanding == 0 { shrink(to: idleLimit) }
    }

    /// Releases cached buffers, largest first, until at most `limit` bytes stay.
    private func shrink(to limit: Int) {
        for size in free.keys.sorted(by: >) where cachedBytes > limit {
            while cachedBytes > limit, let pointer = free[size]?.popLast() {
                cachedBytes -= size
                Self.release(pointer, size: size)
            }
            if free[size]?.isEmpty == true { free[size] = nil }
        }
    }

    private static func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        guard size >= mappedFrom else { return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096) }
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pointer, pointer != MAP_FAILED else {
            // Out of address space or mappings: malloc's answer is the same failure, and a
            // request buffer cannot be done without.
            fatalError("BufferPool: mmap of \(size) bytes failed: \(String(cString: strerror(errno)))")
        }
        return pointer
    }

    private static func release(_ pointer: UnsafeMutableRawPointer, size: Int) {
        if size >= mappedFrom { munmap(pointer, size) } else { pointer.deallocate() }
    }

    static func sizeClass(_ count: Int) -> Int {
        max(4096, 1 << (Int.bitWidth - (max(count, 1) - 1).leadingZeroBitCount))
    }
}
