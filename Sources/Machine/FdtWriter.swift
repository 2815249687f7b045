import CKVM

/// Sequential-write libfdt calls for `DeviceTree`; the first error stops the build.
struct FdtWriter {
    let fdt: UnsafeMutableRawPointer
    let size: Int32
    private var status: Int32 = 0

    init(fdt: UnsafeMutableRawPointer, size: Int32) {
        self.fdt = fdt
        self.size = size
    }

    mutating func write(_ tree: DeviceTree) -> Int32 {
        step { [size] in fdt_create($0, size) }
        step { fdt_finish_reservemap($0) }
        begin("")
        u32("#address-cells", 2)
        u32("#size-cells", 2)
        string("compatible", "svmm,pvh")
        begin("chosen")
        string("bootargs", tree.bootArguments)
        if tree.hasSerial { string("stdout-path", "/serial@3f8") }
        end()
        begin("memory@0")
        string("device_type", "memory")
        cells("reg", [0, 0, UInt32(tree.memorySize >> 32), UInt32(truncatingIfNeeded: tree.memorySize)])
        end()
        if tree.hasSerial {
            begin("serial@3f8")
            string("compatible", "ns16550a")
            cells("reg", [1, 0x3f8, 0, 8])  // I/O space, as the ISA binding encodes it
            u32("clock-frequency", 1_843_200)
            u32("interrupts", 4)
            end()
        }
        for node in tree.virtioNodes {
            begin("virtio_mmio@\(String(node.address, radix: 16))")
            string("compatible", "virtio,mmio")
            cells("reg", [UInt32(node.address >> 32), UInt32(truncatingIfNeeded: node.address),
                          UInt32(node.size >> 32), UInt32(truncatingIfNeeded: node.size)])
            u32("interrupts", node.irq)
            step { fdt_property($0, "dma-coherent", nil, 0) }
            end()
        }
        end()
        step { fdt_finish($0) }
        return status
    }

    private mutating func step(_ call: (UnsafeMutableRawPointer) -> Int32) {
        if status == 0 { status = call(fdt) }
    }

    private mutating func begin(_ name: String) { step { fdt_begin_node($0, name) } }
    private mutating func end() { step { fdt_end_node($0) } }
    private mutating func string(_ name: String, _ value: String) { step { ckvm_fdt_property_string($0, name, value) } }
    private mutating func u32(_ name: String, _ value: UInt32) { step { fdt_property_u32($0, name, value) } }

    private mutating func cells(_ name: String, _ values: [UInt32]) {
        let bigEndian = values.map(\.bigEndian)
        step { fdt in bigEndian.withUnsafeBytes { fdt_property(fdt, name, $0.baseAddress, Int32($0.count)) } }
    }
}
