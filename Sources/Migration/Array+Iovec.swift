import Glibc

/// The vectors of one readv/writev loop: after a call that moved `count` bytes, the ones it
/// filled or emptied are stepped over and a partly done one continues where it stopped.
extension Array where Element == iovec {
    mutating func advance(_ first: inout Int, by count: Int) {
        var left = count
        while left > 0 && first < self.count {
            let length = self[first].iov_len
            if left >= length {
                left -= length
                first += 1
            } else {
                self[first].iov_base = self[first].iov_base! + left
                self[first].iov_len = length - left
                left = 0
            }
        }
    }
}
