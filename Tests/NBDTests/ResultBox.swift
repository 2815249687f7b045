import Foundation

/// A result filled on the loop thread and read by the waiting test thread.
final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
    let done = DispatchSemaphore(value: 0)
}
