/// One request as the driver laid it out: the head index and the buffers in chain order,
/// each already checked to lie inside guest RAM.
public struct DescriptorChain: Equatable, Sendable {
    public struct Segment: Equatable, Sendable {
        public let address: UInt64
        public let length: UInt32
        public let isWritable: Bool
    }

    public let head: UInt16
    public let segments: [Segment]

    public var readable: ArraySlice<Segment> { segments.prefix { !$0.isWritable } }
    public var writable: ArraySlice<Segment> { segments.drop { !$0.isWritable } }

    public var readableLength: UInt64 { readable.reduce(0) { $0 + UInt64($1.length) } }
    public var writableLength: UInt64 { writable.reduce(0) { $0 + UInt64($1.length) } }
}
