import Glibc

extension Qcow2Driver {
    public func read(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        // qcow2_signal_corruption makes the node unusable after a fatal corruption (bs->drv = NULL).
        if metadata.isCorrupt { return completion(.failure(BlockError("No medium found", errno: ENOMEDIUM))) }
        let length = vector.totalLength
        guard length > 0 else { return completion(.success(0)) }
        if let park = parking(offset, Int64(length), writing: false) {
            return park { [self] in read(at: offset, into: vector, completion: completion) }
        }
        let runs: [Qcow2ReadRun]
        do {
            runs = try readRuns(offset: offset, length: length)
        } catch {
            return completion(.failure(error))
        }
        if runs.count == 1 { return startRead(runs[0], into: vector, completion: completion) }
        let request = Qcow2Request(result: length, completion: completion)
        for run in runs {
            request.partStarted()
            startRead(run, into: vector.slice(offset: run.vectorOffset, length: run.length), completion: request.partFinished)
        }
        request.allPartsStarted()
    }

    /// The request cut at cluster boundaries, adjacent pieces from the same place merged.
    private func readRuns(offset: Int64, length: Int) throws(BlockError) -> [Qcow2ReadRun] {
        var runs: [Qcow2ReadRun] = []
        var done = 0
        while done < length {
            let position = offset + Int64(done)
            let inCluster = Int(position & Int64(clusterSize - 1))
            let count = min(clusterSize - inCluster, length - done)
            let run = Qcow2ReadRun(vectorOffset: done, length: count, source: try source(of: position, inCluster: inCluster))
            if runs.isEmpty || !runs[runs.count - 1].merge(run) { runs.append(run) }
            done += count
        }
        return runs
    }

    private func source(of position: Int64, inCluster: Int) throws(BlockError) -> Qcow2ReadRun.Source {
        switch try metadata.state(ofGuestCluster: position >> clusterBits) {
        case .data(let host, _): .host(host + Int64(inCluster))
        case .zero: .zeroes
        case .unallocated: backing == nil ? .zeroes : .backing(position)
        case .compressed: throw Qcow2Metadata.compressedCluster(position)
        }
    }

    private func startRead(_ run: Qcow2ReadRun, into vector: IoVector, completion: @escaping IoCompletion) {
        switch run.source {
        case .zeroes:
            vector.zero(from: 0)
            completion(.success(run.length))
        case .backing(let position):
            readBacking(at: position, into: vector, completion: completion)
        case .host(let host):
            let request = requestStarted()
            file.raise(.readAio)  // qcow2_co_preadv_task's BLKDBG_READ_AIO
            file.read(at: host, into: vector) { [self] result in
                requestDone(request)
                completion(result)
            }
        }
    }

    /// Reads what the backing node shows at the same guest offset: zeroes past its end, or
    /// without one.
    func readBacking(at offset: Int64, into vector: IoVector, completion: @escaping IoCompletion) {
        let length = vector.totalLength
        let available = Int(max(0, min(Int64(length), (backing?.length ?? 0) - offset)))
        if available < length { vector.slice(offset: available, length: length - available).zero(from: 0) }
        guard let backing, available > 0 else { return completion(.success(length)) }
        let part = available == length ? vector : vector.slice(offset: 0, length: available)
        backing.read(at: offset, into: part) { result in completion(result.map { _ in length }) }
    }
}
