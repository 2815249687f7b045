import Glibc

/// QEMU's `mirror_top` filter (block/mirror.c bdrv_mirror_top): inserted above a mirror's
/// source, it passes every request to the source through its `backing` edge; after a write it
/// tells the job, which marks nothing itself (the edge marked the job's bitmap on the source) but
/// in write-blocking mode also writes the target before the request completes.
final class MirrorTopDriver: BlockDriver {
    /// The edge to the source (set right after the node is made, before any request).
    var source: BdrvChild!
    weak var job: MirrorJob?
    /// bdrv_mirror_top's `stop`: the job is ending, the filter forwards no permissions.
    var stopped = false

    var length: Int64 { source?.length ?? 0 }
    var isReadOnly: Bool { false }
    var isFilter: Bool { true }

    func plug() { source.plug() }
    func unplug() { source.unplug() }

    func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        source.read(at: offset, into: vector, completion: completion)
    }

    /// bdrv_mirror_top_pwritev.
    func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        source.write(at: offset, from: vector) { [weak self] result in
            guard case .success = result, let job = self?.job else { return completion(result) }
            job.sourceWritten(offset: offset, length: Int64(vector.totalLength), data: .data(vector)) { completion(result) }
        }
    }

    func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        source.writeZeroes(at: offset, length: length, mayUnmap: mayUnmap) { [weak self] result in
            guard case .success = result, let job = self?.job else { return completion(result) }
            job.sourceWritten(offset: offset, length: length, data: .zeroes) { completion(result) }
        }
    }

    func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        source.discard(at: offset, length: length) { [weak self] result in
            guard case .success = result, let job = self?.job else { return completion(result) }
            // What a discard leaves is the source's business: the range is copied as it reads.
            job.sourceWritten(offset: offset, length: length, data: nil) { completion(result) }
        }
    }

    /// bdrv_mirror_top_flush: the source only.
    func flush(completion: @escaping IoCompletion) {
        guard let source else { return completion(.success(0)) }
        source.flush(completion: completion)
    }
}
