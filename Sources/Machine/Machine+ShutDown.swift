/// Tearing a machine down in a process that goes on (the in-process tests; svmm itself exits).
extension Machine {
    /// Ends the vCPU thread (VcpuControl.finish, on the loop), then the loop thread; afterwards
    /// nothing runs for this machine and the last reference frees it (its KVM objects, its RAM).
    /// From a thread other than the loop's: it only touches the loop, which is Sendable.
    public func shutDown() {
        precondition(!loop.isCurrentThread, "Machine.shutDown() on the loop thread would wait for itself")
        if !loop.isOwner {  // started: the vCPU and the loop threads run
            _ = loopBound.performAndWait { machine -> Bool in
                machine.vcpuControl?.finish()
                machine.vcpuControl = nil
                return true
            }
        }
        loop.stop()
    }
}
