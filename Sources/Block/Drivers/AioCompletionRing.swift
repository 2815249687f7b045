import CKVM
import Synchronization

/// The kernel's AIO completion ring (`struct aio_ring` in fs/aio.c), which an `io_context_t`
/// points at. Reading it directly, as QEMU does, reaps completions without an io_getevents call.
struct AioCompletionRing {
    static let magic: UInt32 = 0xa10a_10a1
    /// Offsets of `struct aio_ring`'s fields: id, nr, head, tail, magic, compat, incompat, header_length.
    static let countOffset = 4, headOffset = 8, tailOffset = 12, magicOffset = 16, incompatOffset = 24, headerOffset = 28

    private let base: UnsafeMutableRawPointer
    private let count: UInt32
    private let headerLength: Int

    /// Nil when the ring's layout is not the one we know (then io_getevents must be used).
    init?(context: io_context_t?) {
        guard let context else { return nil }
        base = UnsafeMutableRawPointer(context)
        guard base.load(fromByteOffset: Self.magicOffset, as: UInt32.self) == Self.magic,
              base.load(fromByteOffset: Self.incompatOffset, as: UInt32.self) == 0 else { return nil }
        count = base.load(fromByteOffset: Self.countOffset, as: UInt32.self)
        headerLength = Int(base.load(fromByteOffset: Self.headerOffset, as: UInt32.self))
        guard count > 0, headerLength >= 32 else { return nil }
    }

    /// Whether a completion is waiting (for busy-polling: no barrier needed to look).
    var hasEvents: Bool {
        base.load(fromByteOffset: Self.headOffset, as: UInt32.self) != base.load(fromByteOffset: Self.tailOffset, as: UInt32.self)
    }

    /// Takes the oldest completion off the ring, if any.
    func next() -> io_event? {
        let head = base.load(fromByteOffset: Self.headOffset, as: UInt32.self)
        let tail = base.load(fromByteOffset: Self.tailOffset, as: UInt32.self)
        guard head != tail, head < count else { return nil }
        // Pairs with the kernel's write barrier in aio_complete(): the event is complete once tail moved.
        atomicMemoryFence(ordering: .acquiring)
        let event = base.load(fromByteOffset: headerLength + Int(head) * MemoryLayout<io_event>.stride, as: io_event.self)
        base.storeBytes(of: (head + 1) % count, toByteOffset: Self.headOffset, as: UInt32.self)
        return event
    }
}
