import Glibc

/// The driver of a node whose real driver is still opening (QEMU allocates the BlockDriverState
/// before bdrv_open_driver runs): the node can then take child edges, through which the real
/// driver reads its image. It serves no I/O.
final class UnopenedDriver: BlockDriver {
    var length: Int64 { 0 }
    var isReadOnly: Bool { true }

    private func refuse(_ completion: IoCompletion) {
        completion(.failure(BlockError("No medium inserted", errno: ENOMEDIUM)))
    }

    func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) { refuse(completion) }
    func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) { refuse(completion) }
    func flush(completion: @escaping IoCompletion) { refuse(completion) }
    func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) { refuse(completion) }
    func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) { refuse(completion) }
}
