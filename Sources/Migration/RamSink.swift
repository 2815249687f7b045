/// Where the destination puts the pages it receives (the Machine's guest RAM; memory in tests).
public protocol RamSink {
    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError)
    /// A page the source found all zero.
    func zeroPage(_ index: Int) throws(StreamError)
}

extension RamSink {
    public func zeroPage(_ index: Int) throws(StreamError) { try writePage(index, from: ZeroPage.page) }
}
