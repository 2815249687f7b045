import Block
import Foundation
@testable import Machine
import Synchronization
import Testing

/// The whole state path in one process: a writer guest runs on machine A, is stopped and drained,
/// its state sections and every RAM page are copied to machine B (same config, same disk), and
/// B continues the guest, which keeps verifying every sector it reads.
@Suite(.serialized) struct InProcessMigrationTests {
    @Test func writerGuestContinuesOnASecondMachineFromSavedStateAndRam() throws {
        let (directory, disk) = try MachineFixture.writerScratch()
        let serialA = directory.appendingPathComponent("a.log").path
        let serialB = directory.appendingPathComponent("b.log").path

        let source = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serialA))
        let sourceStops = StopRecorder()
        try source.start { sourceStops.record($0, $1) }
        try MachineFixture.waitForSerial(serialA) { MachineFixture.lastWriterRound($0) >= 2 }

        // Stop with requests in flight, drain, save; the source lets go of its image.
        let sections = try MachineFixture.onLoop(source) { source throws -> [StateSection] in
            source.stop()
            try source.drainDeviceRequests()
            return try source.saveState()
        }
        try Self.inactivate(source)
        let roundsOnSource = MachineFixture.lastWriterRound(MachineFixture.contents(serialA))
        #expect(Set(sections.map(\.name)) == ["cpu", "kvm-clock", "kvm-irqchip", "kvm-pit", "serial", "debug-exit",
                                              "virtio-mmio", "virtqueue", "virtio-blk"])

        let destination = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serialB))
        let destinationStops = StopRecorder()
        try destination.start(incoming: true) { destinationStops.record($0, $1) }
        #expect(destination.ram.size == source.ram.size)
        try Self.copyRam(from: source, to: destination)
        try MachineFixture.onLoop(destination) { destination in
            try destination.loadState(sections)
            try destination.cont()
        }

        // The guest goes on where it was: more rounds, each sector verified, no new start.
        let text = try MachineFixture.waitForSerial(serialB) { MachineFixture.lastWriterRound($0) >= roundsOnSource + 2 }
        #expect(!text.contains("WRITER start") && !text.contains("WRITER resume"))
        #expect(sourceStops.all.isEmpty && destinationStops.all.isEmpty)
        try MachineFixture.onLoop(destination) { destination in destination.stop() }  // parked: no CPU for the rest of the run
    }

    /// Pre-copy as a migration does it: every page while the guest runs, then the pages KVM's log
    /// and the VMM-write bitmap report, a few passes, then the last ones with the guest stopped.
    /// Pages go into a staging copy (the destination cannot open the disk until the source lets go).
    /// Any write either log missed would leave stale bytes the guest then verifies.
    @Test func livePreCopyWithTheDirtyLogCarriesAWritingGuestOver() throws {
        try MachineFixture.requireKVMAndGuest()
        let directory = try MachineFixture.scratchDirectory()
        let disk = directory.appendingPathComponent("disk.raw").path
        try MachineFixture.sparseFile(disk, size: 4 << 20)
        let serialA = directory.appendingPathComponent("a.log").path
        let serialB = directory.appendingPathComponent("b.log").path
        let source = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serialA))
        try source.start { _, _ in }
        try MachineFixture.waitForSerial(serialA) { MachineFixture.lastWriterRound($0) >= 1 }

        try MachineFixture.onLoop(source) { source in try source.ram.startDirtyTracking() }
        let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: source.ram.pageCount * GuestRam.pageSize, alignment: 4096)
        defer { staging.deallocate() }
        func copy(_ pages: some Sequence<Int>) throws {
            for index in pages {
                try source.ram.readPage(index, into: UnsafeMutableRawBufferPointer(rebasing: staging[index * GuestRam.pageSize..<(index + 1) * GuestRam.pageSize]))
            }
        }
        try copy(0..<source.ram.pageCount)
        var guestDirtied = 0
        var vmmWrote = 0
        for _ in 0..<3 {
            let round = MachineFixture.lastWriterRound(MachineFixture.contents(serialA))
            try MachineFixture.waitForSerial(serialA) { MachineFixture.lastWriterRound($0) > round }
            // The VMM's part on its own first (virtio-blk read data, used ring, status bytes) …
            let vmm = source.memory.vmmWrites.take()
            vmmWrote += vmm.dirtyCount
            // … then the union as the migration sender sees it.
            var dirty = try source.ram.fetchDirtyPages()
            guestDirtied += dirty.dirtyCount
            dirty.formUnion(vmm)
            try copy(dirty.dirtyPages)
        }
        #expect(vmmWrote > 0, "block reads into guest RAM show up in the VMM-write bitmap")
        #expect(guestDirtied > 0, "the guest's own writes show up in KVM's dirty log")

        let sections = try MachineFixture.onLoop(source) { source throws -> [StateSection] in
            source.stop()
            try source.drainDeviceRequests()
            return try source.saveState()
        }
        try copy(try source.ram.fetchDirtyPages().dirtyPages)
        source.ram.stopDirtyTracking()
        try Self.inactivate(source)
        let roundsOnSource = MachineFixture.lastWriterRound(MachineFixture.contents(serialA))

        let destination = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serialB))
        try destination.start(incoming: true) { _, _ in }
        for index in 0..<destination.ram.pageCount {
            try destination.ram.writePage(index, from: UnsafeRawBufferPointer(rebasing: staging[index * GuestRam.pageSize..<(index + 1) * GuestRam.pageSize]))
        }
        try MachineFixture.onLoop(destination) { destination in
            try destination.loadState(sections)
            try destination.cont()
        }
        let text = try MachineFixture.waitForSerial(serialB) { MachineFixture.lastWriterRound($0) >= roundsOnSource + 2 }
        #expect(!text.contains("WRITER start") && !text.contains("WRITER resume"))
        try MachineFixture.onLoop(destination) { destination in destination.stop() }
    }

    static func copyRam(from source: Machine, to destination: Machine) throws {
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: GuestRam.pageSize, alignment: 64)
        defer { page.deallocate() }
        for index in 0..<source.ram.pageCount {
            try source.ram.readPage(index, into: page)
            try destination.ram.writePage(index, from: UnsafeRawBufferPointer(page))
        }
    }

    static func inactivate(_ machine: Machine) throws {
        let outcome = Mutex<Result<Void, BlockError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        machine.loopBound.perform { machine in
            machine.graph.inactivateAll { result in
                outcome.withLock { $0 = result }
                done.signal()
            }
        }
        done.wait()
        try outcome.withLock { $0! }.get()
    }
}
