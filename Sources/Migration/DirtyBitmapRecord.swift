/// One `dirty-bitmap` record of the stream (QEMU's migration/block-dirty-bitmap.c chunks, in
/// svmm's framing): `kind u8 | node (u8 length, UTF-8) | bitmap (u8 length, UTF-8) | …` with
/// start: `granularity u32 | flags u8`, bits: `first bit u64 | bit count u64 | ceil(count/8) bytes`
/// (bit j of byte i is bit first + 8i + j), complete: nothing.
public enum DirtyBitmapRecord: Equatable, Sendable {
    case start(node: String, bitmap: String, granularity: UInt32, flags: UInt8)
    case bits(node: String, bitmap: String, firstBit: UInt64, count: UInt64, bytes: [UInt8])
    case complete(node: String, bitmap: String)

    /// The section name every such record carries.
    public static let sectionName = "dirty-bitmap"
    /// DIRTY_BITMAP_MIG_START_FLAG_ENABLED, _PERSISTENT; the other bits are reserved.
    public static let enabledFlag: UInt8 = 1
    public static let persistentFlag: UInt8 = 2
    public static let knownFlags: UInt8 = 3
    /// Bytes of bits one record carries at most (8 Mi bits: a 512 TiB disk at 64 KiB in 4 records).
    public static let bytesPerRecord = 1 << 20

    private enum Kind: UInt8 { case start = 1, bits = 2, complete = 3 }

    public var node: String {
        switch self { case .start(let node, _, _, _), .bits(let node, _, _, _, _), .complete(let node, _): node }
    }

    public var bitmap: String {
        switch self { case .start(_, let name, _, _), .bits(_, let name, _, _, _), .complete(_, let name): name }
    }

    public func encode(into encoder: inout StreamEncoder) {
        var payload: [UInt8] = []
        func put(_ text: String) {
            let bytes = Array(text.utf8.prefix(255))
            payload.append(UInt8(bytes.count))
            payload += bytes
        }
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.bigEndian) { payload += $0 } }
        switch self {
        case .start(let node, let bitmap, let granularity, let flags):
            payload.append(Kind.start.rawValue); put(node); put(bitmap); put(granularity); payload.append(flags)
        case .bits(let node, let bitmap, let first, let count, let bytes):
            payload.append(Kind.bits.rawValue); put(node); put(bitmap); put(first); put(count); payload += bytes
        case .complete(let node, let bitmap):
            payload.append(Kind.complete.rawValue); put(node); put(bitmap)
        }
        encoder.record(.dirtyBitmap, name: Self.sectionName, payload: payload)
    }

    /// Reads and checks the payload's shape (not yet against the destination's nodes).
    public static func decode(_ record: DecodedRecord) throws(StreamError) -> DirtyBitmapRecord {
        var reader = PayloadReader(record)
        let rawKind = try reader.uint8("chunk kind")
        guard let kind = Kind(rawValue: rawKind) else { throw record.error("unknown dirty bitmap chunk kind \(rawKind)") }
        let node = try reader.string("node name")
        let bitmap = try reader.string("bitmap name")
        guard !node.isEmpty, !bitmap.isEmpty else { throw record.error("a dirty bitmap chunk with an empty node or bitmap name") }
        switch kind {
        case .start:
            let granularity = try reader.uint32("granularity")
            let flags = try reader.uint8("flags")
            try reader.expectEnd()
            return .start(node: node, bitmap: bitmap, granularity: granularity, flags: flags)
        case .bits:
            let first = try reader.uint64("first bit")
            let count = try reader.uint64("bit count")
            let bytes = reader.rest()
            guard count > 0, count <= UInt64(bytes.count) * 8, UInt64(bytes.count) == (count - 1) / 8 + 1 else {
                throw record.error("bitmap '\(node)/\(bitmap)': \(bytes.count) bytes of bits cannot hold \(count) bits")
            }
            return .bits(node: node, bitmap: bitmap, firstBit: first, count: count, bytes: Array(bytes))
        case .complete:
            try reader.expectEnd()
            return .complete(node: node, bitmap: bitmap)
        }
    }
}
