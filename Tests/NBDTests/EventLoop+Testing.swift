import Block
import Foundation

/// The NBD tests run on the loop svmm runs (Loop's EventLoop) on a thread of its own; the test
/// thread hands it work with `sync` or `run` and waits for the result.
extension EventLoop {
    /// A loop whose thread is running; `shutdown()` ends it.
    static func started() throws -> EventLoop {
        let loop = try EventLoop()
        try loop.start()
        return loop
    }

    func shutdown() { stop() }

    /// Runs `job` on the loop thread and returns its result (or rethrows its error).
    func sync<T>(_ job: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let work = UncheckedBox(value: job)
        perform {
            box.result = Result { try work.value() }
            box.done.signal()
        }
        box.done.wait()
        return try box.result!.get()
    }

    /// Starts `operation` on the loop and waits (up to `timeout`) for the completion it calls.
    func run(timeout: TimeInterval = 30, _ operation: @escaping (@escaping IoCompletion) -> Void) throws -> Result<Int, BlockError> {
        let box = ResultBox<Result<Int, BlockError>>()
        let work = UncheckedBox(value: operation)
        perform {
            work.value { result in
                box.result = .success(result)
                box.done.signal()
            }
        }
        guard box.done.wait(timeout: .now() + timeout) == .success else { throw TestFailure("operation timed out") }
        return try box.result!.get()
    }

    /// Completions of an AioContext are processed on this loop, as Machine attaches its own.
    func attach(_ aio: AioContext) throws {
        try sync { try self.watch(eventFd: aio.eventFd, blockLayer: true) { aio.processCompletions() } }
    }
}
