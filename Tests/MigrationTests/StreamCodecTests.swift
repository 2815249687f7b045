import Glibc
import Testing
@testable import Migration

/// RAM in memory, for loading streams without a VM.
final class MemoryRam: RamSink {
    var pages: [[UInt8]]
    init(pageCount: Int) { pages = Array(repeating: [], count: pageCount) }
    func writePage(_ index: Int, from bytes: UnsafeRawBufferPointer) throws(StreamError) { pages[index] = Array(bytes) }
}

/// The stream format round-trips, and the destination refuses every kind of damage with the
/// section and offset named, never trapping.
@Suite struct StreamCodecTests {
    static let machine = MachineDescription(ramSize: 16 * 4096, sections: [SectionID(name: "cpu", instance: 0),
                                                                          SectionID(name: "virtio-mmio", instance: 1)])

    static func page(_ seed: UInt8) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: Int($0) &* 7 &+ Int(seed)) } }

    /// A complete stream: pages 0..3 (2 zero), one iteration, device sections, run state, end.
    static func stream(machine: MachineDescription = machine, devices: [SectionID]? = nil) -> [UInt8] {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.record(.machine, name: "machine", payload: machine.encoded())
        encoder.open(.ram, name: "ram")
        for index in 0..<4 {
            encoder.page(UInt32(index)) { room in
                let bytes = index % 2 == 0 ? page(UInt8(index)) : [UInt8](repeating: 0, count: 4096)
                room.copyBytes(from: bytes)
            }
        }
        encoder.close()
        encoder.record(.ramEndOfIteration, name: "ram")
        for (number, id) in (devices ?? machine.sections).enumerated() {
            encoder.record(.device, name: id.name, instance: id.instance, version: 3, payload: [UInt8(number), 1, 2])
        }
        encoder.record(.globalState, name: "globalstate", payload: [7] + Array("running".utf8))
        encoder.record(.end, name: "end")
        return encoder.buffer.array
    }

    static func load(_ bytes: [UInt8], machine: MachineDescription = machine) throws(StreamError) -> (LoadedStream, MemoryRam) {
        let ram = MemoryRam(pageCount: machine.pageCount)
        var decoder = StreamDecoder(BytesInput(bytes))
        return (try StreamLoader.load(&decoder, into: ram, expecting: machine), ram)
    }

    @Test func aStreamRoundTripsPagesDevicesAndRunState() throws {
        let (loaded, ram) = try Self.load(Self.stream())
        #expect(ram.pages[0] == Self.page(0))
        #expect(ram.pages[1] == [UInt8](repeating: 0, count: 4096))
        #expect(ram.pages[2] == Self.page(2))
        #expect(loaded.pages == 4 && loaded.zeroPages == 2 && loaded.iterations == 1)
        #expect(loaded.devices.map(\.id) == Self.machine.sections)
        #expect(loaded.devices[1] == DeviceStateRecord(id: SectionID(name: "virtio-mmio", instance: 1), version: 3, payload: [1, 1, 2]))
        #expect(loaded.sourceRunState == "running")
    }

    @Test func zeroPagesTravelAsMarkers() {
        let stream = Self.stream()
        // header 16, machine record, then 2 data pages of 4096 + entries: far less than 4 pages.
        #expect(stream.count < 16 + 3 * 4096)
    }

    @Test func aFlippedByteIsRefusedNamingTheSectionAndOffset() {
        var stream = Self.stream()
        let ramOffset = 16 + MigrationStream.recordOverhead + "machine".utf8.count + Self.machine.encoded().count
        stream[ramOffset + 100] ^= 0x40
        #expect(throws: StreamError.self) { try Self.load(stream) }
        do {
            _ = try Self.load(stream)
        } catch {
            #expect(error.description.contains("section 'ram' (instance 0) at offset \(ramOffset)"))
            #expect(error.description.contains("checksum mismatch"))
        }
    }

    @Test func aTruncatedStreamIsRefusedAtEveryLength() {
        let stream = Self.stream()
        for length in [0, 5, 16, 17, 40, stream.count / 2, stream.count - 30, stream.count - 1] {
            #expect(throws: StreamError.self, "cut at \(length)") { try Self.load(Array(stream.prefix(length))) }
        }
    }

    @Test func aTruncatedStreamSaysSo() {
        let stream = Self.stream()
        let withoutEnd = stream.count - MigrationStream.recordOverhead - "end".utf8.count
        #expect(throws: StreamError("migration stream at offset \(withoutEnd): the stream ends before its end record (truncated)")) {
            try Self.load(Array(stream.prefix(withoutEnd)))
        }
    }

    @Test func aDifferentRamSizeIsRefusedClearly() {
        let other = MachineDescription(ramSize: 32 * 4096, sections: Self.machine.sections)
        #expect(throws: StreamError("Length mismatch: ram: 0x10000 in != 0x20000: Invalid argument (the source has 0 MiB of RAM, this VM 0 MiB)")) {
            try Self.load(Self.stream(), machine: other)
        }
    }

    @Test func aDifferentDeviceSetIsRefusedClearly() {
        let fewer = MachineDescription(ramSize: Self.machine.ramSize, sections: [SectionID(name: "cpu", instance: 0)])
        do {
            _ = try Self.load(Self.stream(), machine: fewer)
            Issue.record("loaded a stream with an unknown device")
        } catch {
            #expect(error.description.hasPrefix("Unknown savevm section or instance 'virtio-mmio' 1."))
        }
    }

    @Test func aBadMagicOrVersionIsRefused() {
        var stream = Self.stream()
        stream[0] = UInt8(ascii: "X")
        #expect(throws: StreamError("migration stream at offset 0: not an svmm migration stream (bad magic)")) { try Self.load(stream) }
        stream = Self.stream()
        stream[11] = 9
        #expect(throws: StreamError("migration stream at offset 8: stream version 9 is not supported (this svmm reads version 3)")) { try Self.load(stream) }
    }

    @Test func anUnknownRecordTypeIsRefused() {
        var stream = Self.stream()
        let ramOffset = 16 + MigrationStream.recordOverhead + "machine".utf8.count + Self.machine.encoded().count
        stream[ramOffset] = 0x77
        #expect(throws: StreamError("migration stream at offset \(ramOffset): unknown record type 119")) { try Self.load(stream) }
    }

    @Test func aPageBeyondRamIsRefusedEvenWithAGoodChecksum() {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.record(.machine, name: "machine", payload: Self.machine.encoded())
        encoder.open(.ram, name: "ram")
        encoder.page(16) { $0.copyBytes(from: Self.page(1)) }
        encoder.close()
        do {
            _ = try Self.load(encoder.buffer.array)
            Issue.record("accepted a page beyond RAM")
        } catch {
            #expect(error.description.contains("page 16 is beyond the end of RAM (16 pages)"))
        }
    }

    @Test func aHugeDeclaredLengthIsRefusedWithoutAllocatingIt() {
        var encoder = StreamEncoder()
        encoder.header()
        encoder.buffer.append(StreamRecordType.ram.rawValue)
        encoder.buffer.append(UInt8(3))
        encoder.buffer.append(Array("ram".utf8))
        encoder.buffer.append(UInt32(0))
        encoder.buffer.append(UInt32(1))
        encoder.buffer.append(UInt32.max)
        var decoder = StreamDecoder(BytesInput(encoder.buffer.array))
        #expect(throws: StreamError.self) {
            try decoder.readHeader()
            _ = try decoder.next()
        }
    }

    /// Fuzz-style: random damage anywhere never traps and is refused (or, where it hit nothing
    /// checked, still loads consistently).
    @Test func randomDamageNeverTraps() {
        let stream = Self.stream()
        var generator = SystemRandomNumberGenerator()
        for round in 0..<2000 {
            var damaged = stream
            let flips = Int.random(in: 1...4, using: &generator)
            for _ in 0..<flips {
                damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if round % 3 == 0 { damaged = Array(damaged.prefix(Int.random(in: 0...damaged.count, using: &generator))) }
            if damaged == stream { continue }
            #expect(throws: StreamError.self, "round \(round)") { try Self.load(damaged) }
        }
    }

    @Test func randomBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var bytes = MigrationStream.magic + [0, 0, 0, 1, 0, 0, 0x10, 0]
            bytes += (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(throws: StreamError.self) { try Self.load(bytes) }
        }
    }

    /// The committed fuzz seed was written by an independent encoder (Python's struct and a
    /// table-driven CRC-32C, scripts/migration-stream-v3-seeds.py):
    /// the format is what MigrationStream documents, not only what this encoder happens to write.
    @Test func aStreamWrittenByAnotherEncoderLoads() throws {
        let path = String(#filePath).split(separator: "/").dropLast(2).joined(separator: "/")
        let file = "/" + path + "/fuzz-corpus/migration-stream/complete"
        guard let handle = fopen(file, "rb") else { Issue.record("missing \(file)"); return }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = fread(&chunk, 1, chunk.count, handle), count > 0 { bytes += chunk.prefix(count) }
        let machine = MachineDescription(ramSize: 16 * 4096, sections: [])
        let (loaded, ram) = try Self.load(bytes, machine: machine)
        #expect(ram.pages[0] == (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        #expect(ram.pages[5] == [UInt8](repeating: 0, count: 4096))
        #expect(loaded.devices == [DeviceStateRecord(id: SectionID(name: "serial", instance: 0), version: 1, payload: [1, 2, 3])])
        #expect(loaded.sourceRunState == "running" && loaded.iterations == 1)
    }
}
