/// Little-endian appends into a byte array: the counterpart of ByteReader, for state payloads.
/// Inlinable for the same reason (callers in other modules get it specialized).
public struct ByteWriter {
    @usableFromInline var storage: [UInt8] = []

    public var bytes: [UInt8] { storage }

    @inlinable public init() {}

    @inlinable public mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { storage += $0 }
    }

    @inlinable public mutating func put(_ flag: Bool) { put(UInt8(flag ? 1 : 0)) }

    @inlinable public mutating func put(bytes more: some Collection<UInt8>) { storage += more }

    /// A length-prefixed (u32) UTF-8 string.
    @inlinable public mutating func put(string: String) {
        put(UInt32(string.utf8.count))
        storage += string.utf8
    }

    /// The bytes of a plain C struct from linux/kvm.h, as the kernel lays it out (x86: little-endian).
    @inlinable public mutating func put<T>(raw value: T) {
        withUnsafeBytes(of: value) { storage += $0 }
    }
}
