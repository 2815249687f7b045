/// Reads and checks the migration stream (see MigrationStream): every field is bounds-checked
/// before use, every record's checksum verified before its payload is looked at, and each
/// refusal names the section and the stream offset. Hostile input cannot make it trap or
/// allocate more than `MigrationStream.maxPayload` at a time.
public struct StreamDecoder<Input: StreamInput> {
    private var input: Input
    /// Bytes consumed so far: the offset of the next record.
    public private(set) var offset = 0
    private let buffer = RecordBuffer(capacity: MigrationStream.pagesPerRecord * (MigrationStream.pageSize + 8) + 512)

    public init(_ input: Input) { self.input = input }

    /// Appends up to `count` bytes of the stream to the buffer (which holds `position` bytes);
    /// returns how many came, fewer only at the end of the stream.
    private mutating func fill(_ count: Int, at position: Int) throws(StreamError) -> Int {
        precondition(position == buffer.count, "the decoder reads records in order")
        let room = buffer.extend(by: count)
        var got = 0
        while got < count {
            let chunk = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: room[got...]))
            if chunk == 0 { break }
            got += chunk
        }
        buffer.truncate(to: position + got)
        return got
    }

    private func loadUInt32(_ position: Int) -> UInt32 {
        UInt32(bigEndian: buffer.bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    public mutating func readHeader() throws(StreamError) {
        buffer.removeAll()
        let got = try fill(MigrationStream.headerSize, at: 0)
        if got == 0 { throw .at(0, "the stream is empty (the source sent nothing)") }
        guard got == MigrationStream.headerSize else { throw .at(0, "the stream ends inside its header (\(got) of \(MigrationStream.headerSize) bytes)") }
        let magic = Array(UnsafeRawBufferPointer(start: buffer.bytes, count: 8))
        guard magic == MigrationStream.magic else { throw .at(0, "not an svmm migration stream (bad magic)") }
        let version = loadUInt32(8)
        guard version == MigrationStream.version else {
            throw .at(8, "stream version \(version) is not supported (this svmm reads version \(MigrationStream.version))")
        }
        let pageSize = loadUInt32(12)
        guard pageSize == UInt32(MigrationStream.pageSize) else { throw .at(12, "page size \(pageSize) is not \(MigrationStream.pageSize)") }
        offset = MigrationStream.headerSize
    }

    /// A record's header, read and checked; its payload and checksum follow in the stream.
    struct RecordHeader {
        let record: DecodedRecord
        let length: Int
        /// Of type, name, instance, version and length.
        let headerLength: Int
    }

    /// The next record, checked. At the end of the input (no record started) it throws too:
    /// a stream must end with an `end` record, which the caller stops at.
    public mutating func next() throws(StreamError) -> DecodedRecord {
        try body(of: try nextHeader())
    }

    /// The next record; a `ram` record's pages go to `ram` as they come (straight into its pages
    /// when it takes them in place), and the record comes back with them counted and no payload.
    public mutating func next(loadingPagesInto ram: RamSink, pageCount: Int) throws(StreamError) -> DecodedRecord {
        let header = try nextHeader()
        guard header.record.type == .ram else { return try body(of: header) }
        guard ram.receivesInPlace else {
            var record = try body(of: header)
            for entry in try RamPageEntries.parse(record, pageCount: pageCount) {
                if let data = entry.data { try ram.writePage(entry.index, from: data) } else { try ram.zeroPage(entry.index) }
                record.loadedPages += 1
                if entry.data == nil { record.loadedZeroPages += 1 }
            }
            record.payload = UnsafeRawBufferPointer(start: nil, count: 0)
            return record
        }
        return try loadInPlace(header, into: ram, pageCount: pageCount)
    }

    private mutating func nextHeader() throws(StreamError) -> RecordHeader {
        let start = offset
        buffer.removeAll()
        let got = try fill(2, at: 0)
        if got == 0 { throw .at(start, "the stream ends before its end record (truncated)") }
        guard got == 2 else { throw .at(start, "the stream ends inside a record header (truncated)") }
        let rawType = buffer.bytes.load(fromByteOffset: 0, as: UInt8.self)
        let nameLength = Int(buffer.bytes.load(fromByteOffset: 1, as: UInt8.self))
        guard let type = StreamRecordType(rawValue: rawType) else { throw .at(start, "unknown record type \(rawType)") }
        let fixed = nameLength + 12
        guard try fill(fixed, at: 2) == fixed else { throw .at(start, "the stream ends inside a \(type) record header (truncated)") }
        let nameBytes = UnsafeRawBufferPointer(start: buffer.bytes + 2, count: nameLength)
        guard nameLength > 0, let name = String(validating: nameBytes, as: UTF8.self) else {
            throw .at(start, "a \(type) record has an empty or invalid name")
        }
        let instance = loadUInt32(2 + nameLength)
        let version = loadUInt32(6 + nameLength)
        let length = Int(loadUInt32(10 + nameLength))
        guard length <= MigrationStream.maxPayload else {
            throw .inRecord(name, instance: instance, offset: start, "payload of \(length) bytes is longer than the limit of \(MigrationStream.maxPayload)")
        }
        let record = DecodedRecord(type: type, name: name, instance: instance, version: version, offset: start,
                                   payload: UnsafeRawBufferPointer(start: nil, count: 0))
        return RecordHeader(record: record, length: length, headerLength: 2 + fixed)
    }

    /// The payload and checksum of `header`'s record, read into the buffer and checked.
    private mutating func body(of header: RecordHeader) throws(StreamError) -> DecodedRecord {
        let headerLength = header.headerLength, length = header.length
        let rest = length + 4
        let body = try fill(rest, at: headerLength)
        guard body == rest else {
            throw header.record.error("truncated: the stream ends after \(body) of \(rest) bytes of payload and checksum")
        }
        try checkChecksum(of: header, computed: Crc32c.of(UnsafeRawBufferPointer(start: buffer.bytes, count: headerLength + length)),
                          storedAt: headerLength + length)
        var record = header.record
        record.payload = UnsafeRawBufferPointer(start: buffer.bytes + headerLength, count: length)
        return record
    }

    private mutating func checkChecksum(of header: RecordHeader, computed: UInt32, storedAt position: Int) throws(StreamError) {
        let stored = loadUInt32(position)
        guard stored == computed else {
            throw header.record.error("checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
        }
        offset = header.record.offset + header.headerLength + header.length + 4
    }

    /// A `ram` record straight into guest RAM (QEMU reads into the host page too): the count and
    /// table into the buffer and checked (indices, kinds, the length they imply), then one readv
    /// for all data pages into their places, the checksum over the header, table and those pages
    /// where they landed, then the zero pages. A checksum that does not match refuses the stream
    /// after the pages were written: the VM has not run, and the failed load ends it.
    private mutating func loadInPlace(_ header: RecordHeader, into ram: RamSink, pageCount: Int) throws(StreamError) -> DecodedRecord {
        var record = header.record
        let length = header.length
        var position = header.headerLength
        let truncated = { (what: String) in record.error("truncated: the stream ends inside the \(what)") }
        guard length >= MigrationStream.ramTableHeader else {
            throw record.error("a ram record of \(length) bytes has no page count")
        }
        guard try fill(MigrationStream.ramTableHeader, at: position) == MigrationStream.ramTableHeader else { throw truncated("page count") }
        let count = try RamPageEntries.entryCount(UnsafeRawBufferPointer(start: buffer.bytes + position, count: 4),
                                                  payloadLength: length, in: record)
        position += MigrationStream.ramTableHeader
        let tableLength = count * MigrationStream.pageEntryHeader
        guard try fill(tableLength, at: position) == tableLength else { throw truncated("page table") }
        let entries = try RamPageEntries.table(UnsafeRawBufferPointer(start: buffer.bytes + position, count: tableLength),
                                               count: count, payloadLength: length, pageCount: pageCount, in: record)
        position += tableLength
        var pages: [UnsafeMutableRawBufferPointer] = []
        pages.reserveCapacity(entries.count)
        for entry in entries where entry.isData { pages.append(try ram.pageBuffer(entry.index)) }
        let expected = pages.count * MigrationStream.pageSize
        guard try input.read(into: pages) == expected else { throw truncated("page data") }
        guard try fill(4, at: position) == 4 else { throw truncated("checksum") }
        var crc = Crc32c.of(UnsafeRawBufferPointer(start: buffer.bytes, count: position))
        for page in pages { crc = Crc32c.of(UnsafeRawBufferPointer(page), continuing: crc) }
        try checkChecksum(of: header, computed: crc, storedAt: position)
        for entry in entries where !entry.isData { try ram.zeroPage(entry.index) }
        record.loadedPages = entries.count
        record.loadedZeroPages = entries.count - pages.count
        return record
    }
}
