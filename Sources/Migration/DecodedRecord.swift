/// One record as the decoder read and checked it. `payload` points into the decoder's buffer
/// and is valid until its next `next()`.
public struct DecodedRecord {
    public let type: StreamRecordType
    public let name: String
    public let instance: UInt32
    public let version: UInt32
    /// Where the record starts in the stream (for messages).
    public let offset: Int
    public internal(set) var payload: UnsafeRawBufferPointer
    /// A `ram` record the decoder loaded as it read it: its pages, and of them the zero ones.
    public internal(set) var loadedPages = 0
    public internal(set) var loadedZeroPages = 0

    /// A fault found in this record's payload, named as the decoder names its own.
    public func error(_ problem: String) -> StreamError {
        .inRecord(name, instance: instance, offset: offset, problem)
    }
}
