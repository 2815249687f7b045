import Block
import Glibc

/// Blocking whole-message I/O on a socket, for the client's handshake.
struct BlockingSocket {
    let fd: Int32

    func readExact(_ count: Int, _ what: String) throws(BlockError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
            if n > 0 {
                done += n
            } else if n == 0 {
                throw BlockError("Failed to read \(what): Unexpected end-of-file before all bytes were read", errno: EIO)
            } else if errno != EINTR {
                throw BlockError.posix("Failed to read \(what)", errno: errno)
            }
        }
        return bytes
    }

    func writeAll(_ bytes: [UInt8], _ what: String) throws(BlockError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n >= 0 {
                done += n
            } else if errno != EINTR {
                throw BlockError.posix("Failed to write \(what)", errno: errno)
            }
        }
    }

    /// Limits how long one blocking read may wait (0 removes the limit).
    func setReceiveTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
}
