/// A guest request split into parts on different children: completes once, after every part,
/// with the first error if any part failed.
final class Qcow2Request {
    /// Starts at one: the submitter's own hold, so parts finishing synchronously cannot complete
    /// the request before the last part is started.
    private var outstanding = 1
    private var firstError: BlockError?
    private let result: Int
    private let completion: IoCompletion

    init(result: Int, completion: @escaping IoCompletion) {
        self.result = result
        self.completion = completion
    }

    func partStarted() { outstanding += 1 }

    func partFinished(_ outcome: Result<Int, BlockError>) {
        if case .failure(let error) = outcome, firstError == nil { firstError = error }
        outstanding -= 1
        guard outstanding == 0 else { return }
        completion(firstError.map { .failure($0) } ?? .success(result))
    }

    func allPartsStarted() { partFinished(.success(0)) }
}
