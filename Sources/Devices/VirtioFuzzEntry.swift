import Block
import KVM

/// virtio-blk's fuzz entry (`make fuzz`, target `virtio`): a hostile driver. The input's first
/// 24 bytes are what the driver writes to the virtio-mmio registers (features, queue size, ring
/// addresses, how many kicks); the rest is guest RAM holding whatever rings, descriptor chains
/// and requests it likes. The disk is a null-co node, so requests complete at once.
public enum VirtioFuzzEntry {
    static let ramSize = 64 << 10
    static let headerSize = 24

    /// Never traps: a bad ring or chain puts the device in NEEDS_RESET or fails the request.
    public static func fuzz(_ data: [UInt8]) {
        guard data.count >= headerSize, let memory = try? GuestMemory(size: ramSize) else { return }
        let ram = data[headerSize...].prefix(ramSize)
        guard (try? memory.region(at: 0, length: ram.count).copyBytes(from: ram)) != nil else { return }
        func u32(_ at: Int) -> UInt32 { data[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }

        let graph = BlockGraph()
        let node = BlockNode(nodeName: "disk", driverName: "null-co", driver: NullDriver(size: 1 << 20, readZeroes: true), readOnly: false)
        let backend = BlockBackend(graph: graph, perm: [], shared: .all)
        guard (try? graph.add(node)) != nil, (try? backend.insert(node)) != nil,
              (try? VirtioBlk.claim(backend, deviceName: "vblk0", shareRW: false, incomingMigration: false)) != nil else { return }
        let device = VirtioBlk(backend: backend, memory: memory, serial: "fuzz")
        guard let transport = try? VirtioMmioTransport(device: device, memory: memory) else { return }
        typealias Register = VirtioMmioTransport.Register
        func write(_ register: Register, _ value: UInt32) { transport.write(offset: register.rawValue, size: 4, value: UInt64(value)) }

        // The driver's side of virtio 1.x, section 3.1.1, with the input's values.
        write(.status, 1)
        write(.status, 3)
        write(.driverFeaturesSelect, 0)
        write(.driverFeatures, u32(0))
        write(.driverFeaturesSelect, 1)
        write(.driverFeatures, u32(4) | 1)  // VIRTIO_F_VERSION_1 (bit 32), or FEATURES_OK is refused
        write(.status, 0xb)
        write(.queueSelect, 0)
        write(.queueSize, u32(8) & 0xffff)
        write(.queueDescLow, u32(12))
        write(.queueDriverLow, u32(16))
        write(.queueDeviceLow, u32(20))
        write(.queueReady, 1)
        write(.status, 0xf)
        for offset in stride(from: 0x100, to: 0x100 + 0x3c, by: 4) { _ = transport.read(offset: offset, size: 4) }
        // data[11] (the top of queueSize's word) says how many kicks, at least one.
        for _ in 0...(data[11] & 3) {
            write(.queueNotify, 0)
            write(.interruptAck, 3)
        }
    }
}
