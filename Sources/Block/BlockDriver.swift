/// What a node's driver does with I/O. Requests are started and completed on the event-loop thread.
public protocol BlockDriver: AnyObject {
    /// The size in bytes the node presents.
    var length: Int64 { get }
    var isReadOnly: Bool { get }
    func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion)
    func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion)
    func flush(completion: @escaping IoCompletion)
    /// Drops the data in the range (reads may then return zeroes or old data).
    func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion)
    /// Makes the range read as zeroes; `mayUnmap` allows freeing the space.
    func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion)
    /// Requests between `plug()` and `unplug()` may be batched into one submission.
    func plug()
    func unplug()
}

extension BlockDriver {
    public func plug() {}
    public func unplug() {}
}
