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

    /// The next record, checked. At the end of the input (no record started) it throws too:
    /// a stream must end with an `end` record, which the caller stops at.
    public mutating func next() throws(StreamError) -> DecodedRecord {
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
        let headerLength = 2 + fixed
        let rest = length + 4
        let body = try fill(rest, at: headerLength)
        guard body == rest else {
            throw .inRecord(name, instance: instance, offset: start, "truncated: the stream ends after \(body) of \(rest) bytes of payload and checksum")
        }
        let stored = loadUInt32(headerLength + length)
        let computed = Crc32c.of(UnsafeRawBufferPointer(start: buffer.bytes, count: headerLength + length))
        guard stored == computed else {
            throw .inRecord(name, instance: instance, offset: start,
                            "checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
        }
        offset = start + headerLength + rest
        return DecodedRecord(type: type, name: name, instance: instance, version: version, offset: start,
                             payload: UnsafeRawBufferPointer(start: buffer.bytes + headerLength, count: length))
    }
}
