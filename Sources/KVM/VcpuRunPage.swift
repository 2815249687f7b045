import CKVM
import Glibc

/// A vCPU's shared `kvm_run` mapping. The vCPU's thread reads and writes it around `KVM_RUN`
/// (through `Vcpu`); another thread only ever sets `immediate_exit`, with a C11 atomic store, to
/// pull the vCPU out of the guest — the one thing a pausing loop needs, so this is what it holds.
public final class VcpuRunPage: @unchecked Sendable {  // fixed mapping; other threads only store immediate_exit atomically
    let run: UnsafeMutablePointer<kvm_run>
    private let size: Int

    init(fd: Int32, size: Int) throws(KvmError) {
        let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let mapping, mapping != MAP_FAILED else { throw KvmError("mmap kvm_run") }
        run = mapping.assumingMemoryBound(to: kvm_run.self)
        self.size = size
    }

    deinit { munmap(run, size) }

    /// Makes the next (or the current) `KVM_RUN` return `.interrupted` at once; with a signal it
    /// pulls the vCPU out of the guest without a race.
    public func requestImmediateExit(_ on: Bool) {
        let field = UnsafeMutableRawPointer(run) + MemoryLayout<kvm_run>.offset(of: \kvm_run.immediate_exit)!
        ckvm_atomic_store8(field, on ? 1 : 0)
    }
}
