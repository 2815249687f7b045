/// Little-endian appends into a byte array: the counterpart of ByteReader, for state payloads.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func put(_ flag: Bool) { put(UInt8(flag ? 1 : 0)) }

    mutating func put(bytes more: some Collection<UInt8>) { bytes += more }

    /// A length-prefixed (u32) UTF-8 string.
    mutating func put(string: String) {
        put(UInt32(string.utf8.count))
        bytes += string.utf8
    }

    /// The bytes of a plain C struct from linux/kvm.h, as the kernel lays it out (x86: little-endian).
    mutating func put<T>(raw value: T) {
        withUnsafeBytes(of: value) { bytes += $0 }
    }
}
