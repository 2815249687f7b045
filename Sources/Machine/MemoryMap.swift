/// Where things live in the guest-physical address space (x86, PVH boot).
public enum MemoryMap {
    /// hvm_start_info, its memory map and module list (below the 640 KiB hole, above the real-mode IVT).
    public static let startInfo: UInt64 = 0x6000
    public static let memoryMapTable: UInt64 = 0x6100
    public static let moduleList: UInt64 = 0x6200
    public static let commandLine: UInt64 = 0x7000
    public static let commandLineMax = 0x2000
    public static let fdt: UInt64 = 0x9000
    public static let fdtMax = 0x10000
    public static let lowMemoryEnd: UInt64 = 0xa_0000
    public static let highMemoryStart: UInt64 = 0x10_0000
    /// RAM ends below the MMIO hole.
    public static let ramLimit: UInt64 = 0xc000_0000
    public static let virtioMmioBase: UInt64 = 0xd000_0000
    public static let virtioFirstIrq: UInt32 = 5
    /// Transports (and IRQ lines 5-12) there are, as QEMU microvm's VIRTIO_NUM_TRANSPORTS without ioapic2.
    public static let virtioTransportCount = 8
    /// Addresses Intel VMX needs for real-mode emulation, where QEMU puts them.
    public static let kvmTSS: UInt64 = 0xfffb_d000
    public static let kvmIdentityMap: UInt64 = 0xfeff_c000

    public static func virtioMmioAddress(slot: Int) -> UInt64 {
        virtioMmioBase + UInt64(slot) * 0x200
    }
}
