@testable import Block
import Glibc

/// A test-only disk that swallows I/O like null-co until `failWrites` is set; then every write
/// fails with EIO (a target that went away).
final class FailingDriver: BlockDriver {
    let length: Int64
    var failWrites = false
    var isReadOnly: Bool { false }

    init(size: Int64) { length = size }

    func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        vector.zero(from: 0)
        completion(.success(vector.totalLength))
    }

    func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        completion(failWrites ? .failure(BlockError("write failed", errno: EIO)) : .success(vector.totalLength))
    }

    func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        completion(failWrites ? .failure(BlockError("write failed", errno: EIO)) : .success(0))
    }

    func flush(completion: @escaping IoCompletion) { completion(.success(0)) }
    func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) { completion(.success(0)) }
}
