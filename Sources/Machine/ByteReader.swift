/// Little-endian reads from a byte array that answer nil instead of reading out of bounds.
struct ByteReader {
    let bytes: [UInt8]

    func value<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T? {
        guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else { return nil }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    func u16(_ offset: Int) -> UInt16? { value(offset, as: UInt16.self) }
    func u32(_ offset: Int) -> UInt32? { value(offset, as: UInt32.self) }
    func u64(_ offset: Int) -> UInt64? { value(offset, as: UInt64.self) }
}
