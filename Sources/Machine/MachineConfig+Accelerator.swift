extension MachineConfig {
    /// `-accel`: KVM runs the guest; `qtest` is QEMU's qtest accelerator: the machine, its devices,
    /// block layer, jobs, NBD and migration all work, but no guest code runs (no kernel needed,
    /// the vCPU never enters the guest), as the qemu-iotests harness starts QEMU.
    public enum Accelerator: String, Sendable {
        case kvm
        case qtest
    }

    /// `-machine TYPE`: microvm (the default, svmm's board) or QEMU's `none` (no devices, no buses).
    public enum MachineType: String, Sendable {
        case microvm
        case none
    }
}
