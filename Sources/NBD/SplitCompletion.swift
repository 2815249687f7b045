import Block

/// Completes a request made of several pieces once all of them ended: the total, or the first error.
final class SplitCompletion {
    private var remaining: Int
    private var total = 0
    private var error: BlockError?
    private let completion: IoCompletion

    init(pieces: Int, completion: @escaping IoCompletion) {
        remaining = pieces
        self.completion = completion
    }

    func pieceDone(_ result: Result<Int, BlockError>) {
        switch result {
        case .success(let count): total += count
        case .failure(let failure): if error == nil { error = failure }
        }
        remaining -= 1
        guard remaining == 0 else { return }
        completion(error.map { .failure($0) } ?? .success(total))
    }
}
