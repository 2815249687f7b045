/// The file driver's discard counters (file-posix.c's BDRVRawState.stats, which
/// query-blockstats reports as `driver-specific`).
public struct FileDiscardStats: Sendable, Equatable {
    public private(set) var succeeded: UInt64 = 0
    public private(set) var failed: UInt64 = 0
    public private(set) var bytesSucceeded: UInt64 = 0

    /// raw_account_discard.
    mutating func account(_ result: Result<Int, BlockError>, bytes: Int64) {
        switch result {
        case .success:
            succeeded += 1
            bytesSucceeded &+= UInt64(max(0, bytes))
        case .failure:
            failed += 1
        }
    }
}
