import Glibc

// The sender's writev (additive, beside MigrationChannel's writeAll): a record's table and its
// pages, which stay in the stash or in guest RAM, go out in one call.
extension MigrationChannel {
    /// IOV_MAX on Linux (the C macro does not come through to Swift).
    static let maxVectors = 1024

    /// Writes all of `segments` in order; a peer that went away is an error naming why, as writeAll's.
    func writeAll(_ segments: [UnsafeRawBufferPointer]) throws(MigrationError) {
        var vectors = segments.compactMap { segment -> iovec? in
            guard let base = segment.baseAddress, !segment.isEmpty else { return nil }
            return iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: segment.count)
        }
        var first = 0
        while first < vectors.count {
            let batch = min(vectors.count - first, MigrationChannel.maxVectors)
            let count = vectors.withUnsafeMutableBufferPointer { vector -> Int in
                var message = msghdr()
                message.msg_iov = vector.baseAddress! + first
                message.msg_iovlen = batch
                return isSocket ? sendmsg(output, &message, Int32(MSG_NOSIGNAL)) : writev(output, vector.baseAddress! + first, Int32(batch))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw writeError(returned: count) }
            vectors.advance(&first, by: count)
        }
    }
}
