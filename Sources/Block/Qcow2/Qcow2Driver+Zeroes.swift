import Glibc

extension Qcow2Driver {
    /// Whole clusters get the zero flag (their data cluster freed with `mayUnmap`); partial ones
    /// get real zeroes unless they already read as zeroes. Version 2 has no zero flag: all real zeroes.
    public func writeZeroes(at offset: Int64, length: Int64, mayUnmap: Bool, completion: @escaping IoCompletion) {
        if let refusal = writeRefusal() { return completion(.failure(refusal)) }
        guard length > 0 else { return completion(.success(0)) }
        if let park = parking(offset, length, writing: true) {
            return park { [self] in writeZeroes(at: offset, length: length, mayUnmap: mayUnmap, completion: completion) }
        }
        guard metadata.header.version >= 3 else { return writeZeroBuffers(at: offset, length: length, completion: completion) }
        let pieces = split(offset, length)
        var partial: [Range<Int64>] = []
        do throws(BlockError) {
            try metadata.zero(clusters: pieces.whole, unmap: mayUnmap, hasBacking: backing != nil)
            for piece in pieces.partial where try !readsAsZeroes(piece) { partial.append(piece) }
        } catch {
            return completion(.failure(error))
        }
        let request = Qcow2Request(result: 0, completion: completion)
        for piece in partial {
            request.partStarted()
            writeZeroBuffers(at: piece.lowerBound, length: Int64(piece.count), completion: request.partFinished)
        }
        request.allPartsStarted()
    }

    /// Whole clusters lose their data (reading zeroes where the backing file or the old data would
    /// show through); partial clusters are left alone, as QEMU does.
    public func discard(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        if let refusal = writeRefusal() { return completion(.failure(refusal)) }
        guard length > 0 else { return completion(.success(0)) }
        if let park = parking(offset, length, writing: true) {
            return park { [self] in discard(at: offset, length: length, completion: completion) }
        }
        do {
            try metadata.discard(clusters: split(offset, length).whole, hasBacking: backing != nil)
        } catch {
            return completion(.failure(error))
        }
        completion(.success(0))
    }

    /// The whole clusters of [offset, offset + length) (the disk's last cluster counts as whole when
    /// the range reaches the end of the disk) and the partial pieces at either side.
    private func split(_ offset: Int64, _ length: Int64) -> (whole: Range<Int64>, partial: [Range<Int64>]) {
        let size = Int64(clusterSize)
        let end = offset + length
        let first = (offset + size - 1) >> clusterBits
        let last = end >= self.length ? (end + size - 1) >> clusterBits : end >> clusterBits
        guard first < last else { return (first..<first, [offset..<end]) }
        var partial: [Range<Int64>] = []
        if offset < first << clusterBits { partial.append(offset..<first << clusterBits) }
        if last << clusterBits < end { partial.append(last << clusterBits..<end) }
        return (first..<last, partial)
    }

    /// Whether every cluster the range touches already reads as zeroes.
    private func readsAsZeroes(_ range: Range<Int64>) throws(BlockError) -> Bool {
        for cluster in (range.lowerBound >> clusterBits)...((range.upperBound - 1) >> clusterBits) {
            switch try metadata.state(ofGuestCluster: cluster) {
            case .zero: continue
            case .unallocated where (backing?.length ?? 0) <= cluster << clusterBits: continue
            default: return false
            }
        }
        return true
    }

    /// Writes real zeroes through the normal write path, at most 1 MiB at a time.
    private func writeZeroBuffers(at offset: Int64, length: Int64, completion: @escaping IoCompletion) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(length, 1 << 20)), alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        writeZeroChunks(buffer, at: offset, end: offset + length) { result in
            buffer.deallocate()
            completion(result.map { _ in 0 })
        }
    }

    private func writeZeroChunks(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int64, end: Int64,
                                 completion: @escaping IoCompletion) {
        let count = Int(min(Int64(buffer.count), end - offset))
        write(at: offset, from: IoVector(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))) { [self] result in
            guard case .success = result, offset + Int64(count) < end else { return completion(result) }
            writeZeroChunks(buffer, at: offset + Int64(count), end: end, completion: completion)
        }
    }
}
