import Glibc

/// A protocol node's driver over bytes in memory, for the qcow2 fuzz target: the image file is
/// the fuzz input, every request completes at once, and growth is capped so that a hostile
/// header cannot make the fuzzer allocate gigabytes (beyond the cap a write fails with ENOSPC).
final class FuzzImageFile: BlockDriver, SyncBlockIO {
    static let maxLength = 64 << 20
    private(set) var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var length: Int64 { Int64(bytes.count) }
    var isReadOnly: Bool { false }

    func readSync(at offset: Int64, count: Int) throws(BlockError) -> [UInt8] {
        guard offset >= 0, count >= 0 else { throw BlockError("read at \(offset) of \(count) bytes", errno: EINVAL) }
        // Past the end reads as zeroes, as a file does up to its size (and pread's short read beyond).
        var result = [UInt8](repeating: 0, count: count)
        if offset < Int64(bytes.count) {
            let start = Int(offset)
            let available = min(count, bytes.count - start)
            result.replaceSubrange(0..<available, with: bytes[start..<start + available])
        }
        return result
    }

    func writeSync(_ data: [UInt8], at offset: Int64) throws(BlockError) {
        guard offset >= 0, offset <= Int64(Self.maxLength - data.count) else {
            throw BlockError("write at \(offset) of \(data.count) bytes beyond the fuzz file's cap", errno: ENOSPC)
        }
        let start = Int(offset)
        if start + data.count > bytes.count { bytes += [UInt8](repeating: 0, count: start + data.count - bytes.count) }
        bytes.replaceSubrange(start..<start + data.count, with: data)
    }

    func flushSync() throws(BlockError) {}

    func truncateSync(to newLength: Int64) throws(BlockError) {
        guard newLength >= 0, newLength <= Int64(Self.maxLength) else { throw BlockError("truncate to \(newLength)", errno: ENOSPC) }
        if Int(newLength) < bytes.count { bytes.removeLast(bytes.count - Int(newLength)) } else { bytes += [UInt8](repeating: 0, count: Int(newLength) - bytes.count) }
    }

    func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        do throws(BlockError) {
            let data = try readSync(at: offset, count: vector.totalLength)
            data.withUnsafeBytes { vector.scatter(from: $0) }
            completion(.success(vector.totalLength))
        } catch {
            completion(.failure(error))
        }
    }

    func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        var data = [UInt8](repeating: 0, count: vector.totalLength)
        data.withUnsafeMutableBytes { vector.gather(into: $0) }
        do throws(BlockError) {
            try writeSync(data, at: offset)
            completion(.success(data.count))
        } catch {
            completion(.failure(error))
        }
    }

    func flush(completion: @escaping IoCompletion) { completion(.success(0)) }

    func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) { completion(.success(0)) }

    func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        guard length >= 0, length <= Int64(Self.maxLength) else { return completion(.failure(BlockError("write zeroes of \(length)", errno: ENOSPC))) }
        do throws(BlockError) {
            try writeSync([UInt8](repeating: 0, count: Int(length)), at: offset)
            completion(.success(0))
        } catch {
            completion(.failure(error))
        }
    }
}
