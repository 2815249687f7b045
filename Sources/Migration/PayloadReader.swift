/// Reads the small structured payloads (machine description, global state) with bounds checks;
/// a short or malformed payload is refused naming the record.
struct PayloadReader {
    private let record: DecodedRecord
    private var position = 0

    init(_ record: DecodedRecord) { self.record = record }

    private mutating func take(_ count: Int, _ what: String) throws(StreamError) -> UnsafeRawBufferPointer {
        guard record.payload.count - position >= count else { throw record.error("payload ends inside the \(what)") }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: record.payload[position..<position + count])
    }

    mutating func uint8(_ what: String) throws(StreamError) -> UInt8 { try take(1, what)[0] }

    mutating func uint32(_ what: String) throws(StreamError) -> UInt32 {
        UInt32(bigEndian: try take(4, what).loadUnaligned(as: UInt32.self))
    }

    mutating func uint64(_ what: String) throws(StreamError) -> UInt64 {
        UInt64(bigEndian: try take(8, what).loadUnaligned(as: UInt64.self))
    }

    /// A length-prefixed (u8) UTF-8 string.
    mutating func string(_ what: String) throws(StreamError) -> String {
        let length = Int(try uint8(what))
        guard let text = String(validating: try take(length, what), as: UTF8.self) else { throw record.error("the \(what) is not UTF-8") }
        return text
    }

    /// Everything not read yet.
    mutating func rest() -> UnsafeRawBufferPointer {
        defer { position = record.payload.count }
        return UnsafeRawBufferPointer(rebasing: record.payload[position...])
    }

    func expectEnd() throws(StreamError) {
        guard position == record.payload.count else { throw record.error("\(record.payload.count - position) unexpected bytes after the payload") }
    }
}
