import Glibc
import Machine

extension QmpMonitor {
    func coreCommands() -> [QmpCommand] {
        [
            QmpCommand("query-status") { [unowned self] _ in
                .object([("status", .string(machine.runState.rawValue)), ("singlestep", .bool(false)),
                         ("running", .bool(machine.isRunning))])
            },
            // qmp_stop answers after do_vm_stop's drain and flush (STOP is out before them).
            QmpCommand(async: "stop") { [unowned self] _, reply in
                machine.stop { reply(.success(.emptyObject)) }
            },
            QmpCommand("cont") { [unowned self] _ throws(QmpError) in
                do throws(MachineError) { try machine.cont() } catch { throw QmpError(error) }
                return .emptyObject
            },
            QmpCommand(async: "quit") { [unowned self] _, reply in
                reply(.success(.emptyObject))
                emit(.shutdown(guest: false, reason: "host-qmp-quit"))
                // Like QEMU, leave clients a moment to read the reply and the event before EOF.
                machine.eventLoop.runSoon {
                    usleep(50_000)
                    exit(0)
                }
            },
            QmpCommand("query-version") { _ in Self.version },
            QmpCommand("query-commands") { [unowned self] _ in
                .array((["qmp_capabilities"] + commands.keys.sorted()).map { .object([("name", .string($0))]) })
            },
            QmpCommand("query-name") { [unowned self] _ in
                machine.config.name.map { .object([("name", .string($0))]) } ?? .emptyObject
            },
        ]
    }
}
