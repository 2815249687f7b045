/// Where the destination puts the pages it receives (the Machine's guest RAM; memory in tests).
public protocol RamSink {
    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError)
}
