import Block
import Glibc

/// `base:allocation` for an export: holes and data of the host file under the backend's node
/// (through raw), found with SEEK_DATA/SEEK_HOLE. Other nodes report everything as data.
struct AllocationProbe {
    private let fd: Int32?
    /// SEEK_DATA and SEEK_HOLE (Linux; Glibc hides them without _GNU_SOURCE).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4
    private let base: Int64

    init(backend: BlockBackend) {
        var driver = backend.node?.driver
        var base: Int64 = 0
        while let raw = driver as? RawDriver {
            base += raw.offset
            driver = raw.file.node.driver
        }
        self.fd = (driver as? FileDriver)?.fd
        self.base = base
    }

    /// Whether zeroing is cheap (a file: fallocate), for NBD_CMD_FLAG_FAST_ZERO.
    var zeroesFast: Bool { fd != nil }

    /// Extents (length, flags) covering [offset, offset + length), at most `limit` of them.
    func extents(offset: UInt64, length: UInt32, limit: Int) -> [(length: UInt32, flags: UInt32)] {
        var list = ExtentList(limit: limit)
        var position = Int64(offset)
        let end = position + Int64(length)
        while position < end && !list.isFull {
            let (stop, flags) = run(at: position, end: end)
            list.add(UInt32(stop - position), flags)
            position = stop
        }
        return list.extents
    }

    /// The run of equal status that starts at `position`: its end and its flags.
    private func run(at position: Int64, end: Int64) -> (Int64, UInt32) {
        guard let fd else { return (end, 0) }
        let hole = NbdProtocol.stateHole | NbdProtocol.stateZero
        let data = Int64(lseek(fd, off_t(base + position), Self.seekData))
        if data < 0 { return errno == ENXIO ? (end, hole) : (end, 0) }
        if data - base > position { return (min(data - base, end), hole) }
        let next = Int64(lseek(fd, off_t(base + position), Self.seekHole))
        return next < 0 ? (end, 0) : (min(max(next - base, position + 1), end), 0)
    }
}
