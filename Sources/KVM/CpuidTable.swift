import CKVM
import Glibc

/// A `struct kvm_cpuid2` with its trailing entries, owned by Swift.
public final class CpuidTable {
    let raw: UnsafeMutableRawPointer
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        let size = MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride
        raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        raw.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(capacity)
    }

    deinit { raw.deallocate() }

    public var count: Int { Int(raw.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent) }

    private var entries: UnsafeMutablePointer<kvm_cpuid_entry2> {
        (raw + MemoryLayout<kvm_cpuid2>.size).assumingMemoryBound(to: kvm_cpuid_entry2.self)
    }

    /// Edits every entry of `function`, e.g. to hide a feature.
    public func update(function: UInt32, _ body: (inout kvm_cpuid_entry2) -> Void) {
        for index in 0..<count where entries[index].function == function {
            body(&entries[index])
        }
    }

    public func entry(function: UInt32, index: UInt32 = 0) -> kvm_cpuid_entry2? {
        (0..<count).lazy.map { self.entries[$0] }.first { $0.function == function && $0.index == index }
    }
}
