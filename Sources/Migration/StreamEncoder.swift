/// Writes the migration stream's header and records into a RecordBuffer (see MigrationStream).
/// A record is opened, its payload appended, then closed, which fills in the length and checksum.
public struct StreamEncoder {
    public let buffer: RecordBuffer
    private var recordStart: Int?
    private var payloadStart = 0

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
        precondition(recordStart == nil, "a record is already open")
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

    /// Bytes of the open record's payload so far.
    public var payloadLength: Int { recordStart == nil ? 0 : buffer.count - payloadStart }
    public var isOpen: Bool { recordStart != nil }

    public mutating func close() {
        guard let start = recordStart else { preconditionFailure("no record is open") }
        buffer.patch(UInt32(buffer.count - payloadStart), at: payloadStart - 4)
        let crc = Crc32c.of(UnsafeRawBufferPointer(rebasing: buffer.contents[start...]))
        buffer.append(crc)
        recordStart = nil
    }

    /// A whole record with `payload`.
    public mutating func record(_ type: StreamRecordType, name: String, instance: UInt32 = 0, version: UInt32 = 1,
                                payload: [UInt8] = []) {
        open(type, name: name, instance: instance, version: version)
        buffer.append(payload)
        close()
    }

    // MARK: RAM page entries (inside an open `ram` record)

    /// Appends page `index` as a zero entry (the caller saw it all zero in place).
    public func zeroPage(_ index: UInt32) {
        let room = buffer.extend(by: MigrationStream.pageEntryHeader)
        room.storeBytes(of: index.bigEndian, toByteOffset: 0, as: UInt32.self)
        room.storeBytes(of: RamPageKind.zero.rawValue, toByteOffset: 4, as: UInt8.self)
    }

    /// Appends page `index`: `fill` writes its 4096 bytes in place; a page that turns out all zero
    /// becomes a zero entry. Returns the kind sent.
    @discardableResult
    public mutating func page(_ index: UInt32, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> RamPageKind {
        // One reservation for the whole entry (each append would be an exclusivity-checked access).
        let entryStart = buffer.count
        let entry = buffer.extend(by: MigrationStream.pageEntryHeader + MigrationStream.pageSize)
        entry.storeBytes(of: index.bigEndian, toByteOffset: 0, as: UInt32.self)
        entry.storeBytes(of: RamPageKind.data.rawValue, toByteOffset: 4, as: UInt8.self)
        let room = UnsafeMutableRawBufferPointer(rebasing: entry[MigrationStream.pageEntryHeader...])
        do {
            try fill(room)
        } catch {
            buffer.truncate(to: entryStart)
            throw error
        }
        guard ZeroPage.isZero(UnsafeRawBufferPointer(room)) else { return .data }
        buffer.truncate(to: entryStart + MigrationStream.pageEntryHeader)
        entry.storeBytes(of: RamPageKind.zero.rawValue, toByteOffset: 4, as: UInt8.self)
        return .zero
    }
}
