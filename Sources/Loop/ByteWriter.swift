/// Little-endian appends into a byte array: the counterpart of ByteReader, for state payloads.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    public mutating func put(_ flag: Bool) { put(UInt8(flag ? 1 : 0)) }

    public mutating func put(bytes more: some Collection<UInt8>) { bytes += more }

    /// A length-prefixed (u32) UTF-8 string.
    public mutating func put(string: String) {
        put(UInt32(string.utf8.count))
        bytes += string.utf8
    }

    /// The bytes of a plain C struct from linux/kvm.h, as the kernel lays it out (x86: little-endian).
    public mutating func put<T>(raw value: T) {
        withUnsafeBytes(of: value) { bytes += $0 }
    }
}
