import Glibc

/// A scatter-gather list of host buffers (guest RAM seen by the host) for one request.
public struct IoVector {
    public private(set) var segments: [iovec] = []
    public private(set) var totalLength: Int = 0

    public init() {}

    public init(_ buffer: UnsafeMutableRawBufferPointer) {
        append(buffer)
    }

    public mutating func append(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        segments.append(iovec(iov_base: buffer.baseAddress, iov_len: buffer.count))
        totalLength += buffer.count
    }

    /// True when every segment starts and ends on `alignment`, as O_DIRECT requires.
    public func isAligned(to alignment: Int) -> Bool {
        segments.allSatisfy { Int(bitPattern: $0.iov_base) % alignment == 0 && $0.iov_len % alignment == 0 }
    }

    /// Copies `source` into the segments in order (after a bounced read).
    public func scatter(from source: UnsafeRawBufferPointer) {
        var offset = 0
        for segment in segments where offset < source.count {
            let count = min(segment.iov_len, source.count - offset)
            segment.iov_base.copyMemory(from: source.baseAddress! + offset, byteCount: count)
            offset += count
        }
    }

    /// Copies the segments in order into `destination` (before a bounced write).
    public func gather(into destination: UnsafeMutableRawBufferPointer) {
        var offset = 0
        for segment in segments where offset < destination.count {
            let count = min(segment.iov_len, destination.count - offset)
            (destination.baseAddress! + offset).copyMemory(from: segment.iov_base, byteCount: count)
            offset += count
        }
    }
}

extension IoVector {
    /// Zeroes every byte from `start` to the end.
    public func zero(from start: Int) {
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

extension IoVector {
    /// The bytes [offset, offset + length) of this vector, as a vector over the same memory.
    public func slice(offset: Int, length: Int) -> IoVector {
        var result = IoVector()
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
        return result
    }
}
