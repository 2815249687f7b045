import Glibc

/// A growable byte buffer the encoder writes records into and the sender writes out in one
/// call. RAM page data does not have to be in it: an insertion puts bytes into the stream at a
/// buffer offset without copying them in — a page copied into the stash (while the guest runs),
/// or the guest's page itself (with the VM stopped) — and `withSegments` hands the sender the
/// whole stream in order for one writev.
public final class RecordBuffer {
    public private(set) var bytes: UnsafeMutableRawPointer
    public private(set) var capacity: Int
    public private(set) var count = 0
    /// Page copies the insertions point into (by offset, as the stash may move when it grows).
    private var stash: UnsafeMutableRawPointer
    private var stashCapacity: Int
    private var stashCount = 0
    private var insertions: [Insertion] = []

    private struct Insertion {
        /// The buffer offset the bytes go before.
        let at: Int
        /// Guest memory, or nil for `stashOffset` in the stash.
        let pointer: UnsafeRawPointer?
        let stashOffset: Int
        let count: Int
    }

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        bytes = .allocate(byteCount: self.capacity, alignment: 4096)
        stashCapacity = 4096
        stash = .allocate(byteCount: stashCapacity, alignment: 4096)
    }

    deinit {
        bytes.deallocate()
        stash.deallocate()
    }

    /// The buffer's own bytes (without the insertions).
    public var contents: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: count) }

    /// The stream as written so far: the buffer's bytes with the insertions in their places.
    public var array: [UInt8] {
        var result: [UInt8] = []
        withSegments { segments in for segment in segments { result += segment } }
        return result
    }

    /// Bytes in the stream so far, insertions included.
    public var streamCount: Int { insertions.reduce(count) { $0 + $1.count } }

    public func removeAll() {
        count = 0
        stashCount = 0
        insertions.removeAll(keepingCapacity: true)
    }

    /// Drops everything from `length` on (an undone record).
    func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "truncating beyond the buffer")
        precondition(insertions.last.map { $0.at <= length } ?? true, "truncating below an insertion")
        count = length
    }

    private static func grown(_ old: UnsafeMutableRawPointer, used: Int, capacity: inout Int, needed: Int) -> UnsafeMutableRawPointer {
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 4096)
        grown.copyMemory(from: old, byteCount: used)
        old.deallocate()
        capacity = newCapacity
        return grown
    }

    func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        bytes = Self.grown(bytes, used: count, capacity: &capacity, needed: count + extra)
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

    // MARK: insertions

    /// `length` bytes of stash room, returned by offset (`stashed(_:count:)` gives the memory);
    /// not in the stream until `insertStashed`.
    func stashRoom(_ length: Int) -> Int {
        if stashCount + length > stashCapacity {
            stash = Self.grown(stash, used: stashCount, capacity: &stashCapacity, needed: stashCount + length)
        }
        defer { stashCount += length }
        return stashCount
    }

    /// Gives back the last stash room (a page that turned out all zero).
    func dropStashRoom(_ length: Int) {
        precondition(length <= stashCount, "dropping more stash than there is")
        stashCount -= length
    }

    func stashed(_ offset: Int, count length: Int) -> UnsafeMutableRawBufferPointer {
        precondition(offset >= 0 && offset + length <= stashCount, "stash offset beyond the stash")
        return UnsafeMutableRawBufferPointer(start: stash + offset, count: length)
    }

    /// The stashed bytes at `offset` go into the stream here (after the buffer's bytes so far).
    func insertStashed(_ offset: Int, count length: Int) {
        insertions.append(Insertion(at: count, pointer: nil, stashOffset: offset, count: length))
    }

    /// `bytes` (guest memory that does not change until the buffer is written) go into the
    /// stream here, not copied.
    func insert(_ external: UnsafeRawBufferPointer) {
        guard let base = external.baseAddress, !external.isEmpty else { return }
        insertions.append(Insertion(at: count, pointer: base, stashOffset: 0, count: external.count))
    }

    /// The stream's bytes in order: pieces of the buffer and the insertions between them.
    public func withSegments<Result, Failure: Error>(_ body: ([UnsafeRawBufferPointer]) throws(Failure) -> Result) throws(Failure) -> Result {
        var segments: [UnsafeRawBufferPointer] = []
        segments.reserveCapacity(insertions.count * 2 + 1)
        var position = 0
        for insertion in insertions {
            if insertion.at > position { segments.append(UnsafeRawBufferPointer(start: bytes + position, count: insertion.at - position)) }
            position = insertion.at
            let start = insertion.pointer ?? UnsafeRawPointer(stash + insertion.stashOffset)
            segments.append(UnsafeRawBufferPointer(start: start, count: insertion.count))
        }
        if count > position { segments.append(UnsafeRawBufferPointer(start: bytes + position, count: count - position)) }
        return try body(segments)
    }
}
