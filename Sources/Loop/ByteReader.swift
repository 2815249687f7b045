/// Little-endian reads from a byte array that answer nil instead of reading out of bounds:
/// at an offset (ELF headers), or in sequence from `position` (state payloads). Inlinable, so a
/// caller in another module gets it specialized: unspecialized, each first use of a type had the
/// Swift runtime build generic metadata (150 µs of a migration's switch-over on the destination).
public struct ByteReader {
    public let bytes: [UInt8]
    /// Where the `next…` reads continue.
    public var position = 0

    @inlinable public init(bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    @inlinable public func value<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T? {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else { return nil }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    @inlinable public func u16(_ offset: Int) -> UInt16? { value(offset, as: UInt16.self) }
    @inlinable public func u32(_ offset: Int) -> UInt32? { value(offset, as: UInt32.self) }
    @inlinable public func u64(_ offset: Int) -> UInt64? { value(offset, as: UInt64.self) }

    @inlinable public mutating func next<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        guard let result = value(position, as: type) else { return nil }
        position += MemoryLayout<T>.size
        return result
    }

    @inlinable public mutating func nextBytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, position <= bytes.count, count <= bytes.count - position else { return nil }
        defer { position += count }
        return bytes[position..<position + count]
    }

    @inlinable public var isAtEnd: Bool { position == bytes.count }
    @inlinable public var remaining: Int { bytes.count - position }

    @inlinable public mutating func nextBool() -> Bool? {
        switch next(UInt8.self) {
        case 0: false
        case 1: true
        default: nil
        }
    }

    /// A u32-length-prefixed UTF-8 string of at most `maximum` bytes.
    @inlinable public mutating func nextString(maximum: Int) -> String? {
        guard let length = next(UInt32.self), length <= maximum, let bytes = nextBytes(Int(length)) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A plain C struct of integers (every bit pattern a value): `blank` filled from the next bytes.
    @inlinable public mutating func nextRaw<T>(_ blank: T) -> T? {
        guard let bytes = nextBytes(MemoryLayout<T>.size) else { return nil }
        var value = blank
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes) }
        return value
    }
}
