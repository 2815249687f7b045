import CKVM
import Devices
import Foundation
import KVM
import Testing
@testable import Machine

/// Machine.saveState/loadState's refusals, each naming the section, and dirty tracking on a
/// running guest. Real machines in this process (KVM and the guest image needed).
@Suite(.serialized) struct MachineStateTests {
    struct Pair {
        let source: Machine
        let destination: Machine
        let sections: [StateSection]
        let serialB: String
        let roundsOnSource: Int
    }

    /// A writer guest that ran two rounds, stopped and saved; a destination started for incoming with its RAM.
    static func stoppedWriterAndDestination(destinationArguments: (String) -> [String] = MachineFixture.writerArguments) throws -> Pair {
        let (directory, disk) = try MachineFixture.writerScratch()
        let serialA = directory.appendingPathComponent("a.log").path
        let serialB = directory.appendingPathComponent("b.log").path
        let source = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serialA))
        try source.start { _, _ in }
        try MachineFixture.waitForSerial(serialA) { MachineFixture.lastWriterRound($0) >= 2 }
        let sections = try MachineFixture.onLoop(source) { source throws -> [StateSection] in
            source.stop()
            try source.drainDeviceRequests()
            return try source.saveState()
        }
        try InProcessMigrationTests.inactivate(source)
        let destination = try Machine(config: try MachineFixture.config(destinationArguments(disk), serial: serialB))
        try destination.start(incoming: true) { _, _ in }
        try InProcessMigrationTests.copyRam(from: source, to: destination)
        return Pair(source: source, destination: destination, sections: sections, serialB: serialB,
                    roundsOnSource: MachineFixture.lastWriterRound(MachineFixture.contents(serialA)))
    }

    static func loadError(_ machine: Machine, _ sections: [StateSection]) throws -> String {
        try MachineFixture.onLoop(machine) { machine -> String in
            do {
                try machine.loadState(sections)
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
    }

    static func replacing(_ sections: [StateSection], _ name: String, instance: UInt32 = 0,
                          _ change: (StateSection) -> StateSection) -> [StateSection] {
        sections.map { $0.name == name && $0.instanceId == instance ? change($0) : $0 }
    }

    static func payload(_ section: StateSection, _ payload: [UInt8]) -> StateSection {
        StateSection(name: section.name, instanceId: section.instanceId, version: section.version, payload: payload)
    }

    @Test func loadRefusesBadSectionsByNameThenTakesTheGoodOnes() throws {
        let pair = try Self.stoppedWriterAndDestination()
        let sections = pair.sections
        let machine = pair.destination
        #expect(try Self.loadError(machine, sections.filter { $0.name != "kvm-pit" })
                == "State section 'kvm-pit' instance 0 is missing: the source has a different device set")
        #expect(try Self.loadError(machine, sections + [StateSection(name: "virtio-net", instanceId: 0, version: 1, payload: [])])
                == "Unknown state section 'virtio-net' instance 0: this machine has no such device")
        #expect(try Self.loadError(machine, sections + [StateSection(name: "virtio-mmio", instanceId: 1, version: 1, payload: [])])
                == "Unknown state section 'virtio-mmio' instance 1: this machine has no such device")
        #expect(try Self.loadError(machine, sections + sections.filter { $0.name == "serial" })
                == "State section 'serial' instance 0 appears twice")
        #expect(try Self.loadError(machine, Self.replacing(sections, "serial") {
            StateSection(name: $0.name, instanceId: 0, version: 2, payload: $0.payload)
        }) == "State section 'serial' instance 0: version 2, this svmm loads version 1")
        let cpu = sections.first { $0.name == "cpu" }!
        #expect(try Self.loadError(machine, Self.replacing(sections, "cpu") { Self.payload($0, Array($0.payload.dropLast())) })
                == "State section 'cpu' instance 0: malformed payload (\(cpu.payload.count - 1) bytes)")
        #expect(try Self.loadError(machine, Self.replacing(sections, "virtqueue") { Self.payload($0, $0.payload + [0]) })
                == "State section 'virtqueue' instance 0: malformed payload (8 bytes)")
        #expect(try Self.loadError(machine, Self.replacing(sections, "kvm-clock") { Self.payload($0, []) })
                == "State section 'kvm-clock' instance 0: malformed payload (0 bytes)")
        // A flag that is neither 0 nor 1 (the virtqueue's event_idx, its last byte).
        #expect(try Self.loadError(machine, Self.replacing(sections, "virtqueue") { Self.payload($0, Array($0.payload.dropLast()) + [2]) })
                == "State section 'virtqueue' instance 0: malformed payload (7 bytes)")

        // Values, checked as guest input.
        var transport = StatePayloadCodec.decodeTransport(sections.first { $0.name == "virtio-mmio" }!.payload)!
        transport.queues[0].size = 100
        #expect(try Self.loadError(machine, Self.replacing(sections, "virtio-mmio") { Self.payload($0, StatePayloadCodec.encode(transport)) })
                == "State section 'virtio-mmio' instance 0: field 'queue[0].size': 100 is not a power of 2 up to 128")
        var vcpu = StatePayloadCodec.decodeVcpu(cpu.payload)!
        vcpu.mpState.mp_state = 77
        #expect(try Self.loadError(machine, Self.replacing(sections, "cpu") { Self.payload($0, StatePayloadCodec.encode(vcpu)) })
                == "State section 'cpu' instance 0: field 'mp_state': 77 is not an x86 MP state")
        var pit = StatePayloadCodec.decodeRaw(sections.first { $0.name == "kvm-pit" }!.payload, as: kvm_pit_state2())!
        pit.channels.1.mode = 9
        #expect(try Self.loadError(machine, Self.replacing(sections, "kvm-pit") { Self.payload($0, StatePayloadCodec.encodeRaw(pit)) })
                == "State section 'kvm-pit' instance 0: field 'channels[1].mode': 9 is not an 8254 mode")
        var ioapic = StatePayloadCodec.decodeRaw(sections.first { $0.name == "kvm-irqchip" && $0.instanceId == 2 }!.payload, as: kvm_irqchip())!
        ioapic.chip.ioapic.base_address = 0x1000
        #expect(try Self.loadError(machine, Self.replacing(sections, "kvm-irqchip", instance: 2) { Self.payload($0, StatePayloadCodec.encodeRaw(ioapic)) })
                == "State section 'kvm-irqchip' instance 2: field 'base_address': 0x1000, expected 0xfec00000")
        // What only KVM can judge: CR0.PG without CR0.PE.
        vcpu = StatePayloadCodec.decodeVcpu(cpu.payload)!
        vcpu.sregs.cr0 = 0x8000_0000
        #expect(try Self.loadError(machine, Self.replacing(sections, "cpu") { Self.payload($0, StatePayloadCodec.encode(vcpu)) })
                == "State section 'cpu' instance 0: ioctl KVM_SET_SREGS: EINVAL")

        // The good state still loads over all that, and the guest goes on.
        #expect(try Self.loadError(machine, sections) == "loaded")
        try MachineFixture.onLoop(machine) { machine in try machine.cont() }
        let text = try MachineFixture.waitForSerial(pair.serialB) { MachineFixture.lastWriterRound($0) >= pair.roundsOnSource + 1 }
        #expect(!text.contains("WRITER start"))
        try MachineFixture.onLoop(machine) { machine in machine.stop() }  // parked: no CPU for the rest of the run
    }

    /// Corrupted payloads never trap: cut at every length, extended, and (for the device sections,
    /// whose values svmm checks itself) with bits flipped; each load either refuses or takes values
    /// that passed the checks. The good state then loads over it all and the guest carries on.
    @Test func corruptedPayloadsAreRefusedOrCheckedNeverTrap() throws {
        let pair = try Self.stoppedWriterAndDestination()
        let machine = pair.destination
        var random = SplitMix64(seed: 0x5eed)
        var refused = 0
        for section in pair.sections {
            var variants = Set([0, 1, section.payload.count / 2, max(section.payload.count - 1, 0)]).map { Array(section.payload.prefix($0)) }
            variants.append(section.payload + [0])
            if !["cpu", "kvm-clock", "kvm-irqchip", "kvm-pit"].contains(section.name) {
                for _ in 0..<24 {
                    var flipped = section.payload
                    let bit = Int(random.next() % UInt64(flipped.count * 8))
                    flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                    variants.append(flipped)
                }
            }
            for payload in variants where payload != section.payload {
                let message = try Self.loadError(machine, Self.replacing(pair.sections, section.name, instance: section.instanceId) {
                    Self.payload($0, payload)
                })
                if message != "loaded" {
                    refused += 1
                    #expect(message.contains("'\(section.name)'"), "the error names the section: \(message)")
                }
            }
        }
        #expect(refused > 100)
        #expect(try Self.loadError(machine, pair.sections) == "loaded")
        try MachineFixture.onLoop(machine) { machine in try machine.cont() }
        try MachineFixture.waitForSerial(pair.serialB) { MachineFixture.lastWriterRound($0) >= pair.roundsOnSource + 1 }
        try MachineFixture.onLoop(machine) { machine in machine.stop() }
    }

    @Test func aDestinationWithoutTheDiskIsRefused() throws {
        let pair = try Self.stoppedWriterAndDestination { _ in
            ["-m", "64M", "-kernel", MachineFixture.guestImage, "-append", "mode=writer"]
        }
        #expect(try Self.loadError(pair.destination, pair.sections)
                == "Unknown state section 'virtio-mmio' instance 0: this machine has no such device")
    }

    /// Straight after `start(incoming:)` the vCPU may not have parked yet: state requests wait for it.
    @Test func aMachineStartedForIncomingIsParkedAndTakesItsOwnState() throws {
        let (directory, disk) = try MachineFixture.writerScratch()
        let machine = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk),
                                                                    serial: directory.appendingPathComponent("a.log").path))
        try machine.start(incoming: true) { _, _ in }
        let sections = try MachineFixture.onLoop(machine) { machine in try machine.saveState() }
        #expect(machine.runState == .inmigrate)
        #expect(sections.count == 11, "cpu, clock, 3 irqchips, pit, serial, debug-exit, virtio-mmio, virtqueue, virtio-blk … \(sections.map(\.label))")
        #expect(try Self.loadError(machine, sections) == "loaded")
    }

    @Test func stateIsOnlyTakenFromAStoppedMachine() throws {
        let (directory, disk) = try MachineFixture.writerScratch()
        let serial = directory.appendingPathComponent("a.log").path
        let machine = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serial))
        try machine.start { _, _ in }
        try MachineFixture.waitForSerial(serial) { MachineFixture.lastWriterRound($0) >= 1 }
        let message = try MachineFixture.onLoop(machine) { machine -> String in
            do {
                _ = try machine.saveState()
                return "saved"
            } catch {
                return "\(error)"
            }
        }
        #expect(message == "saveState: the vCPU is running: stop the VM first")
        try MachineFixture.onLoop(machine) { machine in machine.stop() }
    }
}
