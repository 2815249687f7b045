/// Where the destination puts the pages it receives (the Machine's guest RAM; memory in tests).
public protocol RamSink {
    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError)
    /// A page the source found all zero.
    func zeroPage(_ index: Int) throws(StreamError)
    /// Whether `pageBuffer` gives every page in place (then data is read straight into it).
    var receivesInPlace: Bool { get }
    /// Page `index`'s 4096 bytes to read the stream's data into, counted as written; only asked
    /// when `receivesInPlace`, for an index already checked against the RAM size.
    func pageBuffer(_ index: Int) throws(StreamError) -> UnsafeMutableRawBufferPointer
}

extension RamSink {
    public func zeroPage(_ index: Int) throws(StreamError) { try writePage(index, from: ZeroPage.page) }
    public var receivesInPlace: Bool { false }
    public func pageBuffer(_ index: Int) throws(StreamError) -> UnsafeMutableRawBufferPointer {
        throw StreamError("page \(index): this RAM takes no pages in place")
    }
}
