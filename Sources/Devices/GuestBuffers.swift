import Block
import KVM

/// The data part of a chain: a byte range (after the header, before the status byte) across
/// the chain's segments, turned into host buffers for I/O or copied out.
struct GuestBuffers {
    let memory: GuestMemory
    let segments: ArraySlice<DescriptorChain.Segment>
    /// Bytes to skip at the start of the first segments.
    let skip: UInt64
    let length: UInt64

    /// Host views of the range, for zero-copy I/O.
    func ioVector() throws(GuestMemoryError) -> IoVector {
        var vector = IoVector()
        try forEachPiece { address, count throws(GuestMemoryError) in
            vector.append(try memory.region(at: address, length: count))
        }
        return vector
    }

    func copyOut(maximum: Int) throws(GuestMemoryError) -> [UInt8] {
        var bytes: [UInt8] = []
        try forEachPiece { address, count throws(GuestMemoryError) in
            let wanted = min(count, maximum - bytes.count)
            if wanted > 0 { bytes += try memory.readBytes(at: address, count: wanted) }
        }
        return bytes
    }

    /// Copies the first bytes of the range into `destination` (as many as fit); returns how many.
    func copyOut(into destination: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) -> Int {
        var copied = 0
        try forEachPiece { address, count throws(GuestMemoryError) in
            let wanted = min(count, destination.count - copied)
            guard wanted > 0 else { return }
            let source = try memory.region(at: address, length: wanted)
            (destination.baseAddress! + copied).copyMemory(from: source.baseAddress!, byteCount: wanted)
            copied += wanted
        }
        return copied
    }

    func copyIn(_ bytes: [UInt8]) throws(GuestMemoryError) {
        var offset = 0
        try forEachPiece { address, count throws(GuestMemoryError) in
            let piece = min(count, bytes.count - offset)
            if piece > 0 { try memory.writeBytes(bytes[offset..<offset + piece], at: address) }
            offset += piece
        }
    }

    /// After I/O filled the range through `ioVector`: marks its pages for dirty tracking.
    func markWritten() {
        guard memory.vmmWrites.isEnabled else { return }
        try? forEachPiece { address, count in memory.markWritten(at: address, length: count) }
    }

    private func forEachPiece(_ body: (UInt64, Int) throws(GuestMemoryError) -> Void) throws(GuestMemoryError) {
        var toSkip = skip
        var remaining = length
        for segment in segments where remaining > 0 {
            let segmentLength = UInt64(segment.length)
            if toSkip >= segmentLength {
                toSkip -= segmentLength
                continue
            }
            let count = min(segmentLength - toSkip, remaining)
            try body(segment.address + toSkip, Int(count))
            remaining -= count
            toSkip = 0
        }
    }
}
