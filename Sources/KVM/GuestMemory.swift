import CKVM
import Glibc
import Synchronization

/// Guest RAM: one anonymous host mapping seen by the guest at `guestBase`.
/// Every access is bounds-checked against the mapping, so a guest-supplied address can never
/// reach host memory outside it. The guest writes this memory concurrently; callers order their
/// accesses with `acquireFence`/`releaseFence` where a protocol (virtqueues) needs it.
public final class GuestMemory: @unchecked Sendable {  // a fixed mapping shared with the guest by design; ring fields use atomics of their width
    public let guestBase: UInt64
    public let size: Int
    let hostBase: UnsafeMutableRawPointer
    /// Pages svmm wrote while dirty tracking is on: every write path below marks it.
    public let vmmWrites: VmmWriteBitmap

    public init(guestBase: UInt64 = 0, size: Int) throws(KvmError) {
        let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if mapping == MAP_FAILED || mapping == nil { throw KvmError("mmap guest RAM (\(size) bytes)") }
        self.guestBase = guestBase
        self.size = size
        self.hostBase = mapping!
        vmmWrites = VmmWriteBitmap(pageCount: (size + DirtyPageBitmap.pageSize - 1) / DirtyPageBitmap.pageSize)
        // Transparent huge pages make guest RAM cheaper to map and to pin for O_DIRECT, as in QEMU.
        madvise(mapping, size, MADV_HUGEPAGE)
    }

    deinit { munmap(hostBase, size) }

    /// The host view of `length` guest bytes at `address`, or an error if any byte is outside RAM.
    public func region(at address: UInt64, length: Int) throws(GuestMemoryError) -> UnsafeMutableRawBufferPointer {
        guard length >= 0, address >= guestBase else {
            throw GuestMemoryError(address: address, length: UInt64(max(length, 0)))
        }
        let offset = address - guestBase
        let (end, overflow) = offset.addingReportingOverflow(UInt64(length))
        guard !overflow, end <= UInt64(size) else { throw GuestMemoryError(address: address, length: UInt64(length)) }
        return UnsafeMutableRawBufferPointer(start: hostBase + Int(offset), count: length)
    }

    /// Records that svmm wrote `length` bytes at `address` through a `region` (e.g. a block read
    /// completed into it): call after the bytes are in place. Addresses outside RAM are ignored.
    @inline(__always)
    public func markWritten(at address: UInt64, length: Int) {
        guard vmmWrites.isEnabled, contains(address, length: UInt64(max(length, 0))) else { return }
        vmmWrites.mark(offset: address - guestBase, length: length)
    }

    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        guard address >= guestBase else { return false }
        let (end, overflow) = (address - guestBase).addingReportingOverflow(length)
        return !overflow && end <= UInt64(size)
    }

    /// Inlinable so callers get a specialized, single-instruction access (see the concrete ones below).
    @inlinable
    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) throws(GuestMemoryError) -> T {
        let bytes = try region(at: address, length: MemoryLayout<T>.size)
        return T(littleEndian: bytes.loadUnaligned(as: T.self))
    }

    @inlinable
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
        let bytes = try region(at: address, length: MemoryLayout<T>.size)
        bytes.storeBytes(of: value.littleEndian, as: T.self)
        markWritten(at: address, length: MemoryLayout<T>.size)
    }

    // Ring indices and descriptors are shared with a guest running on another CPU: they are read
    // and written with single-copy atomic accesses of their exact width (C11 atomics in the shim),
    // which no build configuration can split into byte copies that tear.

    public func loadUInt16(at address: UInt64) throws(GuestMemoryError) -> UInt16 {
        UInt16(littleEndian: ckvm_atomic_load16(try region(at: address, length: 2).baseAddress!))
    }

    public func loadUInt32(at address: UInt64) throws(GuestMemoryError) -> UInt32 {
        UInt32(littleEndian: ckvm_atomic_load32(try region(at: address, length: 4).baseAddress!))
    }

    public func loadUInt64(at address: UInt64) throws(GuestMemoryError) -> UInt64 {
        UInt64(littleEndian: ckvm_atomic_load64(try region(at: address, length: 8).baseAddress!))
    }

    public func storeUInt16(_ value: UInt16, at address: UInt64) throws(GuestMemoryError) {
        ckvm_atomic_store16(try region(at: address, length: 2).baseAddress!, value.littleEndian)
        markWritten(at: address, length: 2)
    }

    public func storeUInt32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError) {
        ckvm_atomic_store32(try region(at: address, length: 4).baseAddress!, value.littleEndian)
        markWritten(at: address, length: 4)
    }

    public func readBytes(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        Array(try region(at: address, length: count))
    }

    public func writeBytes(_ bytes: some Collection<UInt8>, at address: UInt64) throws(GuestMemoryError) {
        let destination = try region(at: address, length: bytes.count)
        destination.copyBytes(from: bytes)
        markWritten(at: address, length: bytes.count)
    }

    public func fill(_ byte: UInt8, at address: UInt64, count: Int) throws(GuestMemoryError) {
        let destination = try region(at: address, length: count)
        destination.initializeMemory(as: UInt8.self, repeating: byte)
        markWritten(at: address, length: count)
    }

    // MARK: whole pages, for the migration stream

    public var pageCount: Int { vmmWrites.pageCount }

    /// Host view of RAM page `index` (the last page may be short when RAM is not page-aligned).
    private func page(_ index: Int) throws(GuestMemoryError) -> UnsafeMutableRawBufferPointer {
        let pageSize = DirtyPageBitmap.pageSize
        guard index >= 0, index < pageCount else {
            throw GuestMemoryError(address: guestBase &+ UInt64(max(index, 0)) &* UInt64(pageSize), length: UInt64(pageSize))
        }
        let offset = index * pageSize
        return UnsafeMutableRawBufferPointer(start: hostBase + offset, count: min(pageSize, size - offset))
    }

    /// Copies RAM page `index` into `buffer` (at least one page long). Safe on any thread: the
    /// guest and the loop may write the page meanwhile, so the copy may mix old and new bytes,
    /// but every such write also dirties the page (KVM's log or `vmmWrites`), so a later pass
    /// sends it again; the last pass runs with the guest stopped and I/O drained.
    public func copyPage(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        let source = try page(index)
        guard buffer.count >= source.count, let destination = buffer.baseAddress else {
            throw GuestMemoryError(address: guestBase + UInt64(index * DirtyPageBitmap.pageSize), length: UInt64(buffer.count))
        }
        destination.copyMemory(from: source.baseAddress!, byteCount: source.count)
    }

    /// Fills RAM page `index` from `buffer` (at least one page long). For the incoming side, before
    /// the vCPU first runs and before devices touch RAM; any thread, but only one writer at a time.
    public func fillPage(_ index: Int, from buffer: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        let destination = try page(index)
        guard buffer.count >= destination.count, let source = buffer.baseAddress else {
            throw GuestMemoryError(address: guestBase + UInt64(index * DirtyPageBitmap.pageSize), length: UInt64(buffer.count))
        }
        destination.baseAddress!.copyMemory(from: source, byteCount: destination.count)
    }

    /// Orders earlier loads from guest memory before later ones (the guest published with a release).
    public static func acquireFence() { atomicMemoryFence(ordering: .acquiring) }
    /// Orders earlier stores before later ones, so the guest sees data before an index that publishes it.
    public static func releaseFence() { atomicMemoryFence(ordering: .releasing) }
    /// Orders stores before later loads (needed by EVENT_IDX checks).
    public static func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}
