/// `null-co`: a disk of `size` bytes that reads zeroes (or leaves buffers alone with
/// `read-zeroes=off`) and swallows writes. For benchmarks and as a stand-in backing.
public final class NullDriver: BlockDriver {
    public let length: Int64
    private let readZeroes: Bool

    public init(size: Int64 = 1 << 30, readZeroes: Bool = false) {
        self.length = size
        self.readZeroes = readZeroes
    }

    public var isReadOnly: Bool { false }

    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        if readZeroes { vector.zero(from: 0) }
        completion(.success(vector.totalLength))
    }

    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        completion(.success(vector.totalLength))
    }

    public func flush(completion: @escaping IoCompletion) { completion(.success(0)) }

    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        completion(.success(0))
    }

    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        completion(.success(0))
    }
}
