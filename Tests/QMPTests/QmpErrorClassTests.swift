import Block
import Glibc
import Machine
import QMP
import Testing

/// The monitor answers with the class the lowest layer chose, through every wrapping.
@Suite struct QmpErrorClassTests {
    @Test func aBlockErrorsKindBecomesTheClass() {
        let error = QmpError(BlockError("Block job 'j' not found", errno: ENOENT, kind: .deviceNotActive))
        #expect(error == QmpError("Block job 'j' not found", class: .deviceNotActive))
        #expect(error.errorClass.qmpClass == "DeviceNotActive")
    }

    @Test func aMachineErrorWrappingOneKeepsItsClass() {
        let lower = BlockError("Device 'x' not found", kind: .deviceNotFound)
        #expect(QmpError(MachineError(lower)).errorClass == .deviceNotFound)
        #expect(QmpError(MachineError("Migration is not finalized yet")).errorClass == .generic)
    }

    @Test func socketAndSystemCallErrorsAreGeneric() {
        #expect(QmpError(SocketError("Failed to bind socket to /x: No such file or directory", errno: ENOENT))
            == QmpError("Failed to bind socket to /x: No such file or directory"))
        #expect(QmpError(SystemCallError("KVM_CHECK_EXTENSION", errno: ENOTSUP, kind: .kvmMissingCap)).errorClass == .kvmMissingCap)
    }
}
