import Glibc
import Machine

/// svmm: parse a QEMU-shaped command line, build the machine, run until the guest exits.

// A parent (a test runner, a shell) may have left signals blocked; SIGTERM and SIGINT must end svmm.
var unblocked = sigset_t()
sigemptyset(&unblocked)
pthread_sigmask(SIG_SETMASK, &unblocked, nil)
let config: MachineConfig
do {
    config = try CommandLineParser.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    Console.error(error.line)
    exit(1)
}

do {
    let machine = try Machine(config: config)
    try machine.start { message, status in
        if !message.isEmpty { Console.error("svmm: \(message)") }
        _exit(status)
    }
} catch {
    Console.error("svmm: \(error)")
    exit(1)
}

while true { pause() }
