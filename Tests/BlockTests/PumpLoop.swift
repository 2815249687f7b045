@testable import Block
import Foundation
import Glibc

/// A test-only FdWatcher driven by hand on the test's thread: `pump(until:)` runs deferred work,
/// the handlers of ready descriptors (loop timers) and the fixture's AIO completions.
final class PumpLoop: FdWatcher {
    struct Timeout: Error {}

    private var handlers: [Int32: (FdInterest) -> Void] = [:]
    private var deferred: [() -> Void] = []
    private let aio: AioContext?

    init(aio: AioContext? = nil) { self.aio = aio }

    func watch(_ fd: Int32, for interest: FdInterest, blockLayer: Bool, handler: @escaping (FdInterest) -> Void) throws(SystemCallError) {
        handlers[fd] = handler
    }

    func update(_ fd: Int32, interest: FdInterest) throws(SystemCallError) {}
    func unwatch(_ fd: Int32) { handlers[fd] = nil }
    func runSoon(_ job: @escaping () -> Void) { deferred.append(job) }
    func pollBlockLayer(timeoutMilliseconds: Int32) { turn(timeoutMilliseconds: timeoutMilliseconds) }

    /// Turns the loop until `done` holds (or 60 s pass).
    func pump(until done: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(60)
        while !done() {
            guard Date() < deadline else { throw Timeout() }
            turn(timeoutMilliseconds: deferred.isEmpty ? 5 : 0)
        }
    }

    private func turn(timeoutMilliseconds: Int32) {
        var fds = handlers.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if let aio { fds.append(pollfd(fd: aio.eventFd, events: Int16(POLLIN), revents: 0)) }
        _ = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
        aio?.processCompletions()
        for entry in fds where entry.revents != 0 { handlers[entry.fd]?(.readable) }
        while !deferred.isEmpty {
            let jobs = deferred
            deferred.removeAll()
            jobs.forEach { $0() }
        }
    }
}
