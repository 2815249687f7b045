/// A bitmap's bits as bytes for the migration stream (QEMU's bdrv_dirty_bitmap_serialize_part /
/// deserialize_part): bit `first + 8·i + j` is bit j (least significant first) of byte i.
extension BdrvDirtyBitmap {
    /// Bytes `ceil(count / 8)` describing bits [first, first + count); nil if the range is not
    /// inside the bitmap.
    public func serialize(firstBit first: Int, count: Int) -> [UInt8]? {
        guard first >= 0, count >= 0, first <= bitCount, count <= bitCount - first else { return nil }
        var bytes = [UInt8](repeating: 0, count: (count + 7) / 8)
        for offset in 0..<count where isSet(first + offset) {
            bytes[offset / 8] |= 1 << UInt8(offset % 8)
        }
        return bytes
    }

    /// Sets the bits that are set in `bytes` (see `serialize`) for bits [first, first + count);
    /// false, with nothing changed, if the range is not inside the bitmap or `bytes` is not
    /// exactly the size `serialize` gives. Bits are only ever set: loading into a fresh bitmap
    /// equals QEMU's overwrite, and writes recorded meanwhile are kept.
    public func deserialize(firstBit first: Int, count: Int, from bytes: UnsafeRawBufferPointer) -> Bool {
        guard first >= 0, count >= 0, first <= bitCount, count <= bitCount - first,
              bytes.count == (count + 7) / 8 else { return false }
        for offset in 0..<count where bytes[offset / 8] & (1 << UInt8(offset % 8)) != 0 {
            setBit(first + offset, to: true)
        }
        return true
    }
}
