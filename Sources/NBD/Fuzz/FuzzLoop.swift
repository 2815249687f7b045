import Block
import Glibc

/// A single-threaded, level-triggered poll loop for the NBD fuzz targets: it runs the watched
/// handlers and deferred jobs until nothing is ready, so one fuzz input is played out to the end
/// in the calling thread, deterministically. (Machine's EventLoop needs a thread and epoll.)
final class FuzzLoop: FdWatcher {
    private var interests: [Int32: FdInterest] = [:]
    private var handlers: [Int32: (FdInterest) -> Void] = [:]
    private var deferred: [() -> Void] = []
    /// <poll.h>'s POLLRDHUP (a _GNU_SOURCE name Glibc's module does not bring in).
    private static let peerHangup: Int16 = 0x2000

    func watch(_ fd: Int32, for interest: FdInterest, blockLayer: Bool, handler: @escaping (FdInterest) -> Void) throws(SystemCallError) {
        interests[fd] = interest
        handlers[fd] = handler
    }

    func update(_ fd: Int32, interest: FdInterest) throws(SystemCallError) { interests[fd] = interest }

    func unwatch(_ fd: Int32) {
        interests[fd] = nil
        handlers[fd] = nil
    }

    func runSoon(_ job: @escaping () -> Void) { deferred.append(job) }

    /// Runs until a round finds no ready descriptor and no deferred job, or `rounds` pass: a
    /// connection that stays busy that long without the input growing is a stall, a bug to find.
    /// `between` runs before each round (the fuzz peer reads what svmm sent it).
    func runUntilIdle(rounds: Int = 100_000, between: () -> Void = {}) {
        for _ in 0..<rounds {
            between()
            var progressed = false
            while !deferred.isEmpty {
                let jobs = deferred
                deferred.removeAll()
                for job in jobs { job() }
                progressed = true
            }
            if dispatchReady(timeoutMilliseconds: 0) { progressed = true }
            if !progressed { return }
        }
        preconditionFailure("FuzzLoop: still busy after \(rounds) rounds: the connection spins")
    }

    /// Every handler here belongs to the block layer (see FdWatcher.pollBlockLayer).
    func pollBlockLayer(timeoutMilliseconds: Int32) {
        _ = dispatchReady(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// One poll over the watched descriptors; true if a handler ran.
    private func dispatchReady(timeoutMilliseconds: Int32) -> Bool {
        var descriptors = interests.map { fd, interest in
            var events = Self.peerHangup
            if interest.contains(.readable) { events |= Int16(POLLIN) }
            if interest.contains(.writable) { events |= Int16(POLLOUT) }
            return pollfd(fd: fd, events: events, revents: 0)
        }
        let ready = descriptors.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
        guard ready > 0 else { return false }
        var ran = false
        for descriptor in descriptors where descriptor.revents != 0 {
            var events: FdInterest = []
            if descriptor.revents & Int16(POLLIN) != 0 { events.insert(.readable) }
            if descriptor.revents & Int16(POLLOUT) != 0 { events.insert(.writable) }
            if descriptor.revents & (Int16(POLLHUP | POLLERR) | Self.peerHangup) != 0 { events.insert(.hangup) }
            // An earlier handler of this round may have closed it.
            guard let handler = handlers[descriptor.fd] else { continue }
            handler(events)
            ran = true
        }
        return ran
    }
}
