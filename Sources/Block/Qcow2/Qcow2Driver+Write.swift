import Glibc

extension Qcow2Driver {
    public func write(at offset: Int64, from vector: IoVector, completion: @escaping IoCompletion) {
        if let refusal = writeRefusal() { return completion(.failure(refusal)) }
        let length = vector.totalLength
        guard length > 0 else { return completion(.success(0)) }
        if let park = parking(offset, Int64(length), writing: true) {
            return park { [self] in write(at: offset, from: vector, completion: completion) }
        }
        let parts: [Qcow2WritePart]
        do {
            parts = try planWrite(offset: offset, length: length)
        } catch {
            return completion(.failure(error))
        }
        if parts.count == 1 { return startWrite(parts[0], from: vector, completion: completion) }
        let request = Qcow2Request(result: length, completion: completion)
        for part in parts {
            request.partStarted()
            startWrite(part, from: vector.slice(offset: part.vectorOffset, length: part.length), completion: request.partFinished)
        }
        request.allPartsStarted()
    }

    /// Allocates (synchronously, so a later request sees the new mapping at once) and cuts the
    /// request into host writes. On failure, undoes the allocations made so far.
    private func planWrite(offset: Int64, length: Int) throws(BlockError) -> [Qcow2WritePart] {
        var parts: [Qcow2WritePart] = []
        var done = 0
        do throws(BlockError) {
            while done < length {
                let position = offset + Int64(done)
                let inCluster = Int(position & Int64(clusterSize - 1))
                let count = min(clusterSize - inCluster, length - done)
                let part = try plan(position: position, inCluster: inCluster, count: count, vectorOffset: done)
                if parts.isEmpty || !parts[parts.count - 1].merge(part) { parts.append(part) }
                done += count
            }
        } catch {
            for part in parts { _ = finishAllocations(part.allocations, succeeded: false) }
            throw error
        }
        return parts
    }

    private func plan(position: Int64, inCluster: Int, count: Int, vectorOffset: Int) throws(BlockError) -> Qcow2WritePart {
        let cluster = position >> clusterBits
        let whole = inCluster == 0 && (count == clusterSize || position + Int64(count) >= length)
        switch try metadata.prepareWrite(guestCluster: cluster, wholeCluster: whole) {
        case .inPlace(let host):
            return Qcow2WritePart(vectorOffset: vectorOffset, length: count, host: host + Int64(inCluster),
                                  allocations: [], copyOnWrite: false)
        case .allocated(let allocation):
            allocating[cluster] = []
            // A never-used cluster already reads as zeroes around the data; with O_DIRECT the data
            // alone can go straight there only if it is sector-aligned.
            let zeroesAround = allocation.fresh && readsZeroes(allocation) && (inCluster | count) % 512 == 0
            return Qcow2WritePart(vectorOffset: vectorOffset, length: count, host: allocation.host + Int64(inCluster),
                                  allocations: [allocation], copyOnWrite: !whole && !zeroesAround)
        }
    }

    /// Whether what the guest saw in the cluster before was all zeroes.
    private func readsZeroes(_ allocation: Qcow2Allocation) -> Bool {
        switch allocation.source {
        case .zeroes: true
        case .backing: (backing?.length ?? 0) <= allocation.guestCluster << clusterBits
        case .host: false
        }
    }

    private func startWrite(_ part: Qcow2WritePart, from data: IoVector, completion: @escaping IoCompletion) {
        let request = requestStarted()
        writeStarted()
        let finish: IoCompletion = { [self] result in
            requestDone(request)
            let succeeded = if case .success = result { true } else { false }
            let waiters = finishAllocations(part.allocations, succeeded: succeeded)
            completion(result)
            waiters.forEach { $0() }
            writeDone()
        }
        if part.copyOnWrite {
            copyOnWrite(part, data: data, completion: finish)
        } else {
            file.raise(.writeAio)  // qcow2_co_pwritev_task's BLKDBG_WRITE_AIO
            file.write(at: part.host, from: data, completion: finish)
        }
    }

    /// Commits allocations whose data landed (or rolls them back) and hands back the requests
    /// that waited for them.
    private func finishAllocations(_ allocations: [Qcow2Allocation], succeeded: Bool) -> [() -> Void] {
        var waiters: [() -> Void] = []
        for allocation in allocations {
            if succeeded {
                metadata.commit(allocation)
            } else {
                try? metadata.rollback(allocation)  // a failed count update only leaks the cluster
            }
            waiters += allocating.removeValue(forKey: allocation.guestCluster) ?? []
        }
        return waiters
    }

    /// Writes the whole cluster from a buffer: what the guest saw before (backing data, the old
    /// shared cluster, or zeroes) with the guest's bytes laid over it.
    private func copyOnWrite(_ part: Qcow2WritePart, data: IoVector, completion: @escaping IoCompletion) {
        let allocation = part.allocations[0]
        let inCluster = Int(part.host - allocation.host)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: clusterSize, alignment: 4096)
        let cluster = IoVector(buffer)
        readOldContents(allocation, into: cluster) { [self] result in
            guard case .success = result else {
                buffer.deallocate()
                return completion(result)
            }
            data.gather(into: UnsafeMutableRawBufferPointer(rebasing: buffer[inCluster..<inCluster + part.length]))
            file.raise(.writeAio)
            file.write(at: allocation.host, from: cluster) { result in
                buffer.deallocate()
                completion(result.map { _ in part.length })
            }
        }
    }

    private func readOldContents(_ allocation: Qcow2Allocation, into cluster: IoVector, completion: @escaping IoCompletion) {
        switch allocation.source {
        case .zeroes:
            cluster.zero(from: 0)
            completion(.success(clusterSize))
        case .backing:
            readBacking(at: allocation.guestCluster << clusterBits, into: cluster, completion: completion)
        case .host(let old):
            file.read(at: old, into: cluster, completion: completion)
        }
    }
}
