import Glibc

/// Busy-polling before the loop blocks, with QEMU's adaptive window (an iothread's `poll-max-ns`,
/// `poll-grow`, `poll-shrink`; util/aio-posix.c's try_poll_mode, run_poll_handlers and the
/// "Adjust polling time" step of aio_poll). One group per `-object iothread`: the devices that
/// name it add their queue and the AIO completion ring as pollers. svmm has one loop thread, so
/// the groups share it: the loop polls every group whose window is open, for the longest window.
/// Owned by the event-loop thread.
public final class LoopPollGroup {
    public let maxNanoseconds: Int64
    /// 0: double the window (QEMU's default); otherwise multiply by it.
    public let grow: Int64
    /// 0: close the window (QEMU's default); otherwise divide by it.
    public let shrink: Int64
    /// The current window (QEMU's ctx->poll_ns): it starts closed and opens as waits turn out short.
    public private(set) var windowNanoseconds: Int64 = 0
    /// Each returns whether it found (and did) work.
    private var pollers: [() -> Bool] = []
    /// Called when polling starts and ends (QEMU's io_poll_begin/io_poll_end): a virtqueue tells
    /// the driver not to kick while it is polled, and asks again when polling stops.
    private var begins: [() -> Void] = []
    private var ends: [() -> Void] = []
    private var polling = false

    init(maxNanoseconds: Int64, grow: Int64, shrink: Int64) {
        self.maxNanoseconds = maxNanoseconds
        self.grow = grow
        self.shrink = shrink
    }

    public func add(poll: @escaping () -> Bool, begin: (() -> Void)? = nil, end: (() -> Void)? = nil) {
        pollers.append(poll)
        if let begin { begins.append(begin) }
        if let end { ends.append(end) }
    }

    var isOpen: Bool { windowNanoseconds > 0 && !pollers.isEmpty }

    func begin() {
        guard !polling else { return }
        polling = true
        for begin in begins { begin() }
    }

    /// Polling stops before the loop blocks; what the end hooks find is done by them.
    func end() {
        guard polling else { return }
        polling = false
        for end in ends { end() }
    }

    func pollOnce() -> Bool {
        var progress = false
        for poll in pollers where poll() { progress = true }
        return progress
    }

    /// After a wait (polling included) that took `blocked` ns: QEMU's adjustment of ctx->poll_ns.
    func adjust(blocked: Int64) {
        if blocked <= windowNanoseconds {
            return  // polling alone would have done: the sweet spot
        }
        if blocked > maxNanoseconds {
            windowNanoseconds = shrink == 0 ? 0 : windowNanoseconds / shrink
        } else if windowNanoseconds < maxNanoseconds {
            let factor = grow == 0 ? 2 : grow
            let (grown, overflow) = windowNanoseconds.multipliedReportingOverflow(by: factor)
            windowNanoseconds = windowNanoseconds == 0 ? 4000 : overflow ? maxNanoseconds : grown
            windowNanoseconds = min(windowNanoseconds, maxNanoseconds)
        }
    }

    static func now() -> Int64 { MonotonicTime.nanoseconds }
}
