import Loop

extension EventLoop {
    /// A loop whose thread is running; `stop()` ends it.
    static func started() throws -> EventLoop {
        let loop = try EventLoop()
        try loop.start()
        return loop
    }

    /// Runs `job` on the loop thread, waits for it and returns its result or rethrows its error.
    func onLoop<T: Sendable>(_ job: @escaping @Sendable () throws -> T) throws -> T {
        try performAndWait { Result { try job() } }.get()
    }
}
