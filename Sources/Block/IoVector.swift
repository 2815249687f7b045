import Glibc

/// A scatter-gather list of host buffers (guest RAM seen by the host) for one request.
/// One buffer (a 4 KiB guest read is one) is kept inline, so such a vector allocates nothing;
/// from two on, all of them live in one array, contiguous as `readv`/`io_prep_preadv` want.
public struct IoVector {
    private var single = iovec()
    private var many: [iovec] = []
    public private(set) var count = 0
    public private(set) var totalLength: Int = 0

    public init() {}

    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        append(buffer)
    }

    public mutating func append(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        let segment = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        switch count {
        case 0: single = segment
        case 1: many = [single, segment]
        default: many.append(segment)
        }
        count += 1
        totalLength += buffer.count
    }

    /// The segments as one contiguous buffer, valid during `body` only.
    public func withSegments<R>(_ body: (UnsafeBufferPointer<iovec>) throws -> R) rethrows -> R {
        guard count == 1 else { return try many.withUnsafeBufferPointer(body) }
        return try withUnsafePointer(to: single) { try body(UnsafeBufferPointer(start: $0, count: 1)) }
    }

    /// The segments as an array (which a one-buffer vector makes for the caller).
    public var segments: [iovec] { count == 1 ? [single] : many }

    /// True when every segment starts and ends on `alignment`, as O_DIRECT requires.
    public func isAligned(to alignment: Int) -> Bool {
        withSegments { $0.allSatisfy { Int(bitPattern: $0.iov_base) % alignment == 0 && $0.iov_len % alignment == 0 } }
    }

    /// Copies `source` into the segments in order (after a bounced read).
    public func scatter(from source: UnsafeRawBufferPointer) {
        withSegments { segments in
            var offset = 0
            for segment in segments where offset < source.count {
                let count = min(segment.iov_len, source.count - offset)
                segment.iov_base.copyMemory(from: source.baseAddress! + offset, byteCount: count)
                offset += count
            }
        }
    }

    /// Copies the segments in order into `destination` (before a bounced write).
    public func gather(into destination: UnsafeMutableRawBufferPointer) {
        withSegments { segments in
            var offset = 0
            for segment in segments where offset < destination.count {
                let count = min(segment.iov_len, destination.count - offset)
                (destination.baseAddress! + offset).copyMemory(from: segment.iov_base, byteCount: count)
                offset += count
            }
        }
    }
}

extension IoVector {
    /// Zeroes every byte from `start` to the end.
    public func zero(from start: Int) {
        withSegments { segments in
            var position = 0
            for segment in segments {
                let segmentStart = max(start - position, 0)
                if segmentStart < segment.iov_len {
                    (segment.iov_base! + segmentStart).initializeMemory(as: UInt8.self, repeating: 0, count: segment.iov_len - segmentStart)
                }
                position += segment.iov_len
            }
        }
    }
}

extension IoVector {
    /// The bytes [offset, offset + length) of this vector, as a vector over the same memory.
    public func slice(offset: Int, length: Int) -> IoVector {
        var result = IoVector()
        withSegments { segments in
            var position = 0
            for segment in segments {
                let segmentEnd = position + segment.iov_len
                let start = max(offset, position), end = min(offset + length, segmentEnd)
                if start < end {
                    result.append(UnsafeMutableRawBufferPointer(start: segment.iov_base! + (start - position), count: end - start))
                }
                position = segmentEnd
                if position >= offset + length { break }
            }
        }
        return result
    }
}
