/// A loop-owned value carried through code that runs on another thread (a vCPU's MMIO exit, a
/// migration thread, an NBD handshake thread), which may hand it back to the loop but never touch
/// it: `value` checks on every access that the caller is the loop's owner (SwiftNIO's
/// NIOLoopBound). Loop-owned types are not `Sendable`, so the compiler refuses every other way
/// across threads; this is the one door, and it is checked.
public struct LoopBound<Value>: @unchecked Sendable {  // `value` is only handed out on its loop's thread (checked)
    public let loop: EventLoop
    private let wrapped: Value

    /// Wraps `value`, which belongs to `loop`. Wrapping does not touch it, so any thread may (a
    /// test holding the machine it started); every access is checked.
    public init(_ value: Value, loop: EventLoop) {
        self.loop = loop
        wrapped = value
    }

    public var value: Value {
        loop.preconditionOwner()
        return wrapped
    }

    /// Runs `job` with the value on the loop thread, soon.
    public func perform(_ job: @escaping @Sendable (Value) -> Void) {
        loop.perform { job(self.value) }
    }

    /// Runs `job` with the value on the loop thread and waits for its result.
    public func performAndWait<T: Sendable>(_ job: @escaping @Sendable (Value) -> T) -> T {
        loop.performAndWait { job(self.value) }
    }
}
