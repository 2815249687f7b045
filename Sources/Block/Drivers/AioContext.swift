import CKVM
import Glibc

/// Linux native AIO (libaio): requests go out with `io_submit`, completions signal `eventFd`,
/// and `processCompletions()` (called by the event loop when `eventFd` is readable) runs their callbacks.
/// Owned by the event-loop thread.
public final class AioContext: FileIoEngine {
    public let eventFd: Int32
    private var context: io_context_t?
    private var slots: [AioSlot]
    private var freeSlots: [Int]
    private var waiting: [FileRequest] = []
    private var plugged: [UnsafeMutablePointer<iocb>?] = []
    private var plugDepth = 0

    public init(depth: Int = 128) throws(BlockError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 { throw BlockError.posix("eventfd", errno: errno) }
        var ctx: io_context_t?
        let rc = io_setup(Int32(depth), &ctx)
        if rc < 0 {
            close(fd)
            throw BlockError.posix("io_setup", errno: -rc)
        }
        eventFd = fd
        context = ctx
        slots = (0..<depth).map { AioSlot(index: $0) }
        freeSlots = Array((0..<depth).reversed())
    }

    deinit {
        io_destroy(context)
        close(eventFd)
    }

    public var inFlight: Int { slots.count - freeSlots.count }

    /// Batches the submissions made until the matching `unplug()` into one `io_submit`.
    public func plug() { plugDepth += 1 }

    public func unplug() {
        plugDepth -= 1
        if plugDepth == 0 { flushPlugged() }
    }

    public func submit(_ request: FileRequest) {
        guard let index = freeSlots.popLast() else {
            waiting.append(request)
            return
        }
        let slot = slots[index]
        slot.start(request, eventFd: eventFd)
        plugged.append(slot.iocb)
        if plugDepth == 0 { flushPlugged() }
    }

    private func flushPlugged() {
        while !plugged.isEmpty {
            let count = plugged.count
            let submitted = plugged.withUnsafeMutableBufferPointer { io_submit(context, count, $0.baseAddress) }
            if submitted == -EAGAIN {
                // The kernel queue is full. Completions make room, and our eventfd brings the loop
                // back here even if none is due (a device may not be kicked while it waits).
                var one: UInt64 = 1
                _ = write(eventFd, &one, 8)
                break
            }
            if submitted < 0 {
                failFirstPlugged(errno: -submitted)
                continue
            }
            plugged.removeFirst(Int(submitted))
        }
    }

    private func failFirstPlugged(errno code: Int32) {
        let iocbPointer = plugged.removeFirst()!
        let index = Int(bitPattern: iocbPointer.pointee.data)
        finish(slot: slots[index], result: -Int64(code))
    }

    /// Reaps every finished request and runs its completion.
    public func processCompletions() {
        if let ring = AioCompletionRing(context: context) {
            while let event = ring.next() {
                finish(slot: slots[Int(bitPattern: event.data)], result: Int64(bitPattern: UInt64(event.res)))
            }
        } else {
            reapWithSyscall()
        }
        flushPlugged()
    }

    /// A busy-poll step (an iothread's poll-max-ns, QEMU's qemu_laio_poll_cb): reaps what the
    /// completion ring holds, if anything. False when it is empty (or not readable directly).
    public func pollCompletions() -> Bool {
        guard let ring = AioCompletionRing(context: context), ring.hasEvents else { return false }
        processCompletions()
        return true
    }

    /// The portable path, for kernels whose completion ring we do not recognise.
    private func reapWithSyscall() {
        var events = [io_event](repeating: io_event(), count: 64)
        while true {
            var timeout = timespec(tv_sec: 0, tv_nsec: 0)
            let count = events.withUnsafeMutableBufferPointer {
                io_getevents(context, 0, Int($0.count), $0.baseAddress, &timeout)
            }
            if count <= 0 { break }
            for event in events.prefix(Int(count)) {
                finish(slot: slots[Int(bitPattern: event.data)], result: Int64(bitPattern: UInt64(event.res)))
            }
            if count < events.count { break }
        }
    }

    private func finish(slot: AioSlot, result: Int64) {
        let finished = slot.complete(result: result)
        freeSlots.append(slot.index)
        if !waiting.isEmpty { submit(waiting.removeFirst()) }
        if let (completion, outcome) = finished { completion(outcome) }
    }
}
