import CKVM
import Glibc
import CommandLineOptions
import Machine
import Migration
import QMP
import Sandbox

/// svmm: parse a QEMU-shaped command line, build the machine, run until the guest exits.

// A parent (a test runner, a shell) may have left signals blocked; SIGTERM and SIGINT must end svmm.
var unblocked = sigset_t()
sigemptyset(&unblocked)
pthread_sigmask(SIG_SETMASK, &unblocked, nil)

// I/O buffers (NBD payloads, O_DIRECT bounce buffers) are large and short-lived: keep them on the
// heap instead of a fresh mmap each time, which costs page faults and zeroing per request.
mallopt(CKVM_M_MMAP_THRESHOLD, 64 << 20)
mallopt(CKVM_M_TRIM_THRESHOLD, 256 << 20)

let config: MachineConfig
do {
    var warnings: [String] = []
    let request = try CommandLineParser.parse(Array(CommandLine.arguments.dropFirst()), warnings: &warnings)
    warnings.forEach(Console.error)
    switch request {
    case .run(let machine): config = machine
    case .information(let text):
        print(text, terminator: "")
        exit(0)
    case .version:
        print(UsageText.versionLines, terminator: "")
        exit(0)
    case .help:
        print(UsageText.help(program: ProgramName.basename), terminator: "")
        exit(0)
    }
} catch {
    Console.error(error.line)
    exit(1)
}

/// The client chardevs, connected first (QEMU opens chardevs before it builds the machine, and the
/// qemu-iotests harness waits for the monitor's connection even when the VM then fails to start).
let qmpClientFds: [Int32]
/// Held open for the process's life: the qtest socket's peer sees a live, silent qtest server.
let qtestFd: Int32?
do throws(ChardevConnector.Failure) {
    qmpClientFds = try config.qmpClients.map { client throws(ChardevConnector.Failure) in
        do throws(ChardevConnector.Failure) { return try ChardevConnector.open(client) } catch {
            throw .init(message: "\(client.source): \(error.message)")
        }
    }
    qtestFd = try config.qtest.map { client throws(ChardevConnector.Failure) in
        do throws(ChardevConnector.Failure) { return try ChardevConnector.open(client) } catch {
            throw .init(message: "\(error.message)\n\(ProgramName.basename): Failed to initialize device for qtest: \"\(client.source)\"")
        }
    }
} catch {
    Console.error("\(ProgramName.basename): \(error.message)")
    exit(1)
}

/// Builds the machine and its monitor; both live as long as the process.
func launch() throws(MachineError) -> (Machine, QmpMonitor) {
    let machine = try Machine(config: config)
    let monitor = QmpMonitor(machine: machine)
    for address in config.qmpAddresses {
        do throws(QmpError) { try monitor.listen(address) } catch { throw MachineError("-qmp \(address): \(error.desc)") }
    }
    for fd in qmpClientFds {
        do throws(QmpError) { try monitor.attach(connected: fd) } catch { throw MachineError("-mon: \(error.desc)") }
    }
    if let incoming = config.incoming {
        // qemu_start_incoming_migration: listen (or start the command) before the VM is up.
        do throws(MigrationError) { try monitor.migration.startIncoming(incoming, fromCommandLine: true) } catch {
            // QEMU reports it at the option: `-incoming tcp:…: Failed to find an available port: …`.
            throw MachineError(error, context: "-incoming \(incoming)")
        }
    }
    try machine.start(incoming: config.incoming != nil) { message, status in
        if !message.isEmpty { Console.error("\(ProgramName.basename): \(message)") }
        _exit(status)
    }
    return (machine, monitor)
}

// -sandbox on: the command line is read and the client chardevs are connected; the filter goes on
// before the machine is built, so that the guest never runs unfiltered (qemu_init installs QEMU's at
// the same point, before the machine). TSYNC covers any thread started before.
do throws(SandboxError) { try SeccompFilter.install(config.sandbox) } catch {
    Console.error("\(ProgramName.basename): \(error)")
    Console.error("\(ProgramName.basename): sandbox: \(error.detail)")
    exit(1)
}

let running: (Machine, QmpMonitor)
do {
    running = try launch()
} catch {
    Console.error("\(ProgramName.basename): \(error)")
    exit(1)
}

while true { pause() }
