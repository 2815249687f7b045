import Block
import Glibc
import Machine
import Testing

/// MachineError wraps what a lower layer threw: the text reads as before (`context: lower text`),
/// and the kind and the error itself are kept for the caller.
@Suite struct MachineErrorTests {
    @Test func aWrappedBlockErrorKeepsItsKindAndItself() throws {
        let lower = BlockError("Block job 'j' not found", errno: ENOENT, kind: .deviceNotActive)
        let error = MachineError(lower, context: "-device virtio-blk-device,drive=d0")
        #expect(error.description == "-device virtio-blk-device,drive=d0: Block job 'j' not found")
        #expect(error.kind == .deviceNotActive)
        #expect(error.cause as? BlockError == lower)
    }

    @Test func withoutContextTheTextIsTheLowerOne() {
        let error = MachineError(SystemCallError("epoll_create1", errno: EMFILE))
        #expect(error.description == "epoll_create1: EMFILE")
        #expect(error.kind == .generic)
        #expect(error.cause is SystemCallError)
    }

    @Test func aPlainOneHasNoCause() {
        let error = MachineError("no kernel given: use -kernel FILE")
        #expect(error.kind == .generic)
        #expect(error.cause == nil)
    }
}
