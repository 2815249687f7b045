import Machine

/// Writes the migration stream's header and records into a RecordBuffer (see MigrationStream).
/// A record is opened, its payload appended, then closed, which fills in the length and checksum.
/// A `ram` record collects its page entries and writes them at `close`: the table first, then
/// the data, which stays where it is (a copy in the stash, or guest RAM with the VM stopped) and
/// goes out by writev, checksummed in place.
public struct StreamEncoder {
    public let buffer: RecordBuffer
    private var recordStart: Int?
    private var payloadStart = 0
    /// The open `ram` record's header fields and entries.
    private var ram: RamRecord?

    private struct RamRecord {
        let name: String
        let instance: UInt32
        let version: UInt32
        var entries: [Entry] = []
        var dataPages = 0
    }

    private struct Entry {
        let index: UInt32
        let kind: RamPageKind
        /// Data: guest memory (nil: `stashOffset` in the buffer's stash).
        let pointer: UnsafeRawPointer?
        let stashOffset: Int
    }

    public init(buffer: RecordBuffer = RecordBuffer()) {
        self.buffer = buffer
    }

    public func header() {
        buffer.append(MigrationStream.magic)
        buffer.append(MigrationStream.version)
        buffer.append(UInt32(MigrationStream.pageSize))
    }

    /// Starts a record; `name` is at most 255 bytes of UTF-8 (longer ones are cut, never trapped on).
    public mutating func open(_ type: StreamRecordType, name: String, instance: UInt32 = 0, version: UInt32 = 1) {
        precondition(recordStart == nil && ram == nil, "a record is already open")
        if type == .ram {
            ram = RamRecord(name: name, instance: instance, version: version)
            ram?.entries.reserveCapacity(MigrationStream.pagesPerRecord)
            return
        }
        writeRecordHeader(type, name: name, instance: instance, version: version)
    }

    private mutating func writeRecordHeader(_ type: StreamRecordType, name: String, instance: UInt32, version: UInt32) {
        recordStart = buffer.count
        let nameBytes = Array(name.utf8.prefix(255))
        buffer.append(type.rawValue)
        buffer.append(UInt8(nameBytes.count))
        buffer.append(nameBytes)
        buffer.append(instance)
        buffer.append(version)
        buffer.append(UInt32(0))  // payload length, patched in `close`
        payloadStart = buffer.count
    }

    public var isOpen: Bool { recordStart != nil || ram != nil }

    public mutating func close() {
        if ram != nil { return closeRam() }
        guard let start = recordStart else { preconditionFailure("no record is open") }
        buffer.patch(UInt32(buffer.count - payloadStart), at: payloadStart - 4)
        let crc = Crc32c.of(UnsafeRawBufferPointer(rebasing: buffer.contents[start...]))
        buffer.append(crc)
        recordStart = nil
    }

    /// A whole record with `payload` (for a `ram` record: a payload made by hand).
    public mutating func record(_ type: StreamRecordType, name: String, instance: UInt32 = 0, version: UInt32 = 1,
                                payload: [UInt8] = []) {
        precondition(!isOpen, "a record is already open")
        writeRecordHeader(type, name: name, instance: instance, version: version)
        buffer.append(payload)
        close()
    }

    // MARK: RAM page entries (inside an open `ram` record)

    /// Appends page `index` as a zero entry (the caller saw it all zero in place).
    public mutating func zeroPage(_ index: UInt32) {
        precondition(ram != nil, "no ram record is open")
        ram?.entries.append(Entry(index: index, kind: .zero, pointer: nil, stashOffset: 0))
    }

    /// Appends page `index`: `fill` writes its 4096 bytes into the stash; a page that turns out
    /// all zero becomes a zero entry. Returns the kind sent.
    @discardableResult
    public mutating func page(_ index: UInt32, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> RamPageKind {
        precondition(ram != nil, "no ram record is open")
        let offset = buffer.stashRoom(MigrationStream.pageSize)
        let room = buffer.stashed(offset, count: MigrationStream.pageSize)
        do {
            try fill(room)
        } catch {
            buffer.dropStashRoom(MigrationStream.pageSize)
            throw error
        }
        guard GuestRam.isZero(UnsafeRawBufferPointer(room)) else {
            ram?.entries.append(Entry(index: index, kind: .data, pointer: nil, stashOffset: offset))
            ram?.dataPages += 1
            return .data
        }
        buffer.dropStashRoom(MigrationStream.pageSize)
        zeroPage(index)
        return .zero
    }

    /// Appends page `index` with its 4096 bytes where they are: they must not change until the
    /// buffer is written (the source's RAM with the VM stopped and I/O drained).
    public mutating func page(_ index: UInt32, inPlace bytes: UnsafeRawBufferPointer) {
        precondition(ram != nil, "no ram record is open")
        precondition(bytes.count == MigrationStream.pageSize && bytes.baseAddress != nil, "a page in place is one whole page")
        ram?.entries.append(Entry(index: index, kind: .data, pointer: bytes.baseAddress, stashOffset: 0))
        ram?.dataPages += 1
    }

    /// `count u32 | (index u32 | kind u8) × count`, then the data pages as insertions, the
    /// checksum over all of it in stream order.
    private mutating func closeRam() {
        guard let record = ram else { return }
        ram = nil
        writeRecordHeader(.ram, name: record.name, instance: record.instance, version: record.version)
        guard let start = recordStart else { return }
        recordStart = nil
        buffer.append(UInt32(record.entries.count))
        let table = buffer.extend(by: record.entries.count * MigrationStream.pageEntryHeader)
        for (position, entry) in record.entries.enumerated() {
            table.storeBytes(of: entry.index.bigEndian, toByteOffset: position * MigrationStream.pageEntryHeader, as: UInt32.self)
            table.storeBytes(of: entry.kind.rawValue, toByteOffset: position * MigrationStream.pageEntryHeader + 4, as: UInt8.self)
        }
        let length = buffer.count - payloadStart + record.dataPages * MigrationStream.pageSize
        buffer.patch(UInt32(length), at: payloadStart - 4)
        var crc = Crc32c.of(UnsafeRawBufferPointer(rebasing: buffer.contents[start...]))
        for entry in record.entries where entry.kind == .data {
            if let pointer = entry.pointer {
                let bytes = UnsafeRawBufferPointer(start: pointer, count: MigrationStream.pageSize)
                crc = Crc32c.of(bytes, continuing: crc)
                buffer.insert(bytes)
            } else {
                crc = Crc32c.of(UnsafeRawBufferPointer(buffer.stashed(entry.stashOffset, count: MigrationStream.pageSize)), continuing: crc)
                buffer.insertStashed(entry.stashOffset, count: MigrationStream.pageSize)
            }
        }
        buffer.append(crc)
    }
}
