import CZlib

/// CRC-32 (IEEE 802.3, zlib's) of the bytes of a record: zlib's table-driven code, which a
/// debug build of Swift could not match byte by byte.
enum Crc32 {
    static func of(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        var value = UInt(crc)
        var remaining = bytes.count
        var pointer = base.assumingMemoryBound(to: UInt8.self)
        // zlib's length is a uInt (32 bits): larger buffers go in pieces.
        while remaining > 0 {
            let piece = min(remaining, 1 << 30)
            value = crc32(value, pointer, uInt(piece))
            pointer += piece
            remaining -= piece
        }
        return UInt32(truncatingIfNeeded: value)
    }

    static func of(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { of($0) }
    }
}
