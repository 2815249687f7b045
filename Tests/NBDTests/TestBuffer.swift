import Block
import Foundation

/// Page-aligned memory a request reads into or writes from, shared with the loop thread.
final class TestBuffer: @unchecked Sendable {
    let memory: UnsafeMutableRawBufferPointer

    init(count: Int) {
        memory = .allocate(byteCount: count, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
    }

    convenience init(_ data: Data) {
        self.init(count: data.count)
        data.withUnsafeBytes { memory.copyMemory(from: $0) }
    }

    deinit { memory.deallocate() }

    var vector: IoVector { IoVector(memory) }
    var data: Data { Data(memory) }

    /// A vector over [offset, offset+count) in two segments, to exercise scatter-gather.
    func split(at middle: Int) -> IoVector {
        var vector = IoVector()
        vector.append(UnsafeMutableRawBufferPointer(rebasing: memory[0..<middle]))
        vector.append(UnsafeMutableRawBufferPointer(rebasing: memory[middle...]))
        return vector
    }
}
