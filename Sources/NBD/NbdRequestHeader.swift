/// The fixed 28-byte header of a transmission request (WRITE data follows it).
public struct NbdRequestHeader: Equatable, Sendable {
    public static let size = 28
    public var flags: NbdCommandFlags
    public var type: UInt16
    public var handle: UInt64
    public var offset: UInt64
    public var length: UInt32

    public init(flags: NbdCommandFlags = [], type: UInt16, handle: UInt64, offset: UInt64, length: UInt32) {
        self.flags = flags
        self.type = type
        self.handle = handle
        self.offset = offset
        self.length = length
    }

    /// Parses a header; nil when the magic is wrong.
    init?(_ bytes: [UInt8]) {
        var reader = WireReader(bytes)
        guard reader.u32() == NbdProtocol.requestMagic,
              let flags = reader.u16(), let type = reader.u16(), let handle = reader.u64(),
              let offset = reader.u64(), let length = reader.u32() else { return nil }
        self.init(flags: NbdCommandFlags(rawValue: flags), type: type, handle: handle, offset: offset, length: length)
    }

    var encoded: [UInt8] {
        var writer = WireWriter(capacity: Self.size)
        writer.u32(NbdProtocol.requestMagic)
        writer.u16(flags.rawValue)
        writer.u16(type)
        writer.u64(handle)
        writer.u64(offset)
        writer.u32(length)
        return writer.bytes
    }
}
