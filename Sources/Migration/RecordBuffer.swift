import Glibc

/// A growable byte buffer the encoder writes records into and the sender writes out in one
/// call; RAM pages are read straight into it (no copy through Swift arrays).
public final class RecordBuffer {
    public private(set) var bytes: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    public private(set) var count = 0

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        bytes = .allocate(byteCount: self.capacity, alignment: 4096)
    }

    deinit { bytes.deallocate() }

    public var contents: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: count) }
    public var array: [UInt8] { Array(contents) }

    public func removeAll() { count = 0 }

    /// Drops everything from `length` on (an undone page entry).
    func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "truncating beyond the buffer")
        count = length
    }

    func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        var newCapacity = capacity
        while newCapacity < count + extra { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 4096)
        grown.copyMemory(from: bytes, byteCount: count)
        bytes.deallocate()
        bytes = grown
        capacity = newCapacity
    }

    func append(_ value: UInt8) {
        reserve(1)
        bytes.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    func append(_ value: UInt32) {
        reserve(4)
        bytes.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt32.self)
        count += 4
    }

    func append(_ value: UInt64) {
        reserve(8)
        bytes.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    func append(_ raw: UnsafeRawBufferPointer) {
        guard let base = raw.baseAddress, !raw.isEmpty else { return }
        reserve(raw.count)
        (bytes + count).copyMemory(from: base, byteCount: raw.count)
        count += raw.count
    }

    func append(_ array: [UInt8]) { array.withUnsafeBytes { append($0) } }

    /// Overwrites a UInt32 written earlier (a record's payload length, known at its end).
    func patch(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= count, "patching beyond the buffer")
        bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// `length` bytes of room at the end, counted in; the caller fills them.
    func extend(by length: Int) -> UnsafeMutableRawBufferPointer {
        reserve(length)
        let room = UnsafeMutableRawBufferPointer(start: bytes + count, count: length)
        count += length
        return room
    }
}
