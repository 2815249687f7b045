import CKVM
import Glibc

/// A one-shot or periodic timer on an event loop (QEMU's QEMUTimer on the main loop's clock),
/// made of a timerfd the loop watches. Its handler runs on the loop thread; `cancel()` may be
/// called from anywhere on that thread, also from inside the handler itself.
public final class LoopTimer {
    private weak var watcher: FdWatcher?
    private var fd: Int32
    private var handler: (() -> Void)?
    private let isPeriodic: Bool

    init(watcher: FdWatcher, after delay: Duration, repeating interval: Duration?, handler: @escaping () -> Void) throws(SystemCallError) {
        let fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard fd >= 0 else { throw SystemCallError("timerfd_create") }
        self.fd = fd
        self.watcher = watcher
        self.handler = handler
        isPeriodic = interval != nil
        var spec = itimerspec(it_interval: interval.map(Self.timespec) ?? Glibc.timespec(), it_value: Self.timespec(delay))
        guard timerfd_settime(fd, 0, &spec, nil) == 0 else {
            let code = errno
            close(fd)
            throw SystemCallError("timerfd_settime", errno: code)
        }
        do {
            // Weak: a timer nobody keeps is released (and stops), instead of living on in the loop.
            try watcher.watch(fd, for: .readable) { [weak self] _ in self?.fire() }
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { release() }

    public var isCancelled: Bool { handler == nil }

    /// Stops the timer; its handler is not called again (not even for an expiry already read).
    public func cancel() {
        handler = nil
        release()
    }

    private func release() {
        guard fd >= 0 else { return }
        watcher?.unwatch(fd)
        close(fd)
        fd = -1
    }

    /// Reads the expiry count (resetting the level-triggered readiness), then runs the handler
    /// once however many periods passed, as a QEMUTimer that fired late runs once.
    private func fire() {
        guard fd >= 0 else { return }
        var expirations: UInt64 = 0
        // A stale readiness (the descriptor was re-armed or reused) reads nothing: not an expiry.
        guard read(fd, &expirations, 8) == 8, expirations > 0, let handler else { return }
        if !isPeriodic {
            // Done before the handler runs, so that it may schedule the next timer at once.
            self.handler = nil
            release()
        }
        handler()
    }

    /// At least one nanosecond: a zero it_value would disarm the timerfd instead of firing it.
    private static func timespec(_ duration: Duration) -> Glibc.timespec {
        let (seconds, attoseconds) = duration.components
        guard seconds > 0 || attoseconds >= 1_000_000_000 else { return Glibc.timespec(tv_sec: 0, tv_nsec: 1) }
        return Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    }
}

extension FdWatcher {
    /// Calls `handler` on the loop after `delay`, and then every `interval` if one is given,
    /// until the returned timer is cancelled (or released: keep a reference while it should run).
    public func schedule(after delay: Duration, repeating interval: Duration? = nil,
                         _ handler: @escaping () -> Void) throws(SystemCallError) -> LoopTimer {
        try LoopTimer(watcher: self, after: delay, repeating: interval, handler: handler)
    }
}
