import Foundation
import Machine
import Testing

/// `finish`, the last of the vCPU thread's control messages: a machine whose guest is writing
/// its disk shuts down, its vCPU and loop threads end, and nothing keeps it alive any more.
@Suite struct MachineShutDownTests {
    @Test func aRunningMachineShutsDownAndIsFreed() throws {
        let (directory, disk) = try MachineFixture.writerScratch()
        let serial = directory.appendingPathComponent("a.log").path
        weak var freed: Machine?
        try {
            let machine = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk), serial: serial))
            freed = machine
            try machine.start { _, _ in }
            try MachineFixture.waitForSerial(serial) { MachineFixture.lastWriterRound($0) >= 1 }
            machine.shutDown()
        }()
        #expect(freed == nil)
        // The guest stopped with its vCPU: no line is added any more.
        let settled = MachineFixture.contents(serial)
        usleep(200_000)
        #expect(MachineFixture.contents(serial) == settled)
    }

    @Test func aMachineThatNeverStartedShutsDown() throws {
        let (directory, disk) = try MachineFixture.writerScratch()
        weak var freed: Machine?
        try {
            let machine = try Machine(config: try MachineFixture.config(MachineFixture.writerArguments(disk: disk),
                                                                      serial: directory.appendingPathComponent("a.log").path))
            freed = machine
            machine.shutDown()
        }()
        #expect(freed == nil)
    }
}
