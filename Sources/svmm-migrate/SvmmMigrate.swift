import ArgumentParser
import QmpClient

@main
struct SvmmMigrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svmm-migrate",
        abstract: "Storage migration between two running VMMs (svmm or QEMU 7.2) through their QMP sockets.",
        discussion: """
            The flow is QEMU's iotest 194: the destination (started with -incoming defer, or already \
            listening) exports --target-node writable over NBD; the source mirrors --device into it \
            (blockdev-mirror sync=full) until READY; then the migration runs; when both sides report \
            'completed' the tool tries to resume the destination while the export is still writable \
            (svmm refuses: the guest device's permissions cannot be applied yet; QEMU 7.2 resumes, \
            and that is reported), ends the mirror (block-job-cancel), stops the NBD server, resumes \
            the destination and checks in x-debug-query-block-graph that its guest device takes \
            'write' and no longer shares it.

            Before the switch-over any failure undoes what the tool set up (job, NBD node, NBD \
            server), so the source runs on as before.

            \(ExitStatus.helpText)
            """
    )

    @Option(name: .long, help: ArgumentHelp("The source's QMP socket.", valueName: "unix:PATH|tcp:HOST:PORT"))
    var source: String

    @Option(name: .long, help: ArgumentHelp("The destination's QMP socket.", valueName: "unix:PATH|tcp:HOST:PORT"))
    var destination: String

    @Option(name: .long, help: "The source's root node or drive to mirror.")
    var device: String

    @Option(name: .customLong("target-node"), help: "The destination's disk node (exported over NBD).")
    var targetNode: String

    @Option(name: .customLong("guest-device"),
            help: "The destination's guest device (default: the one device whose root is --target-node).")
    var guestDevice: String?

    @Option(name: .long, help: ArgumentHelp("Where the destination's NBD server listens.", valueName: "unix:PATH|tcp:HOST:PORT"))
    var nbd: String

    @Option(name: .customLong("export-name"), help: "The NBD export's name (default: --target-node).")
    var exportName: String?

    @Option(name: .customLong("nbd-node-name"), help: "The source's NBD client node.")
    var nbdNodeName = "svmm-migrate-nbd"

    @Option(name: .customLong("job-id"), help: "The mirror job's id.")
    var jobId = "svmm-migrate-mirror"

    @Option(name: .customLong("mirror-speed"), help: "The mirror's speed limit in bytes a second (0: none).")
    var mirrorSpeed: Int64 = 0

    @Option(name: .customLong("migrate-uri"), help: ArgumentHelp("The migration stream's address.", valueName: "unix:PATH|tcp:HOST:PORT"))
    var migrateURI: String

    @Option(name: .customLong("incoming-uri"), help: "What the destination listens on (default: --migrate-uri).")
    var incomingURI: String?

    @Option(name: .long, help: "Seconds each wait (READY, the migration, the mirror's end) may take.")
    var timeout: Double = 300

    @Flag(name: .customLong("no-early-resume-check"),
          help: "Do not try to resume the destination while the NBD export is still writable.")
    var noEarlyResumeCheck = false

    @Flag(name: .long, help: ArgumentHelp(
        "Leave the destination paused once its NBD server is stopped (as virsh migrate --suspend); implies --no-early-resume-check.",
        discussion: "Exit status 0 then means: migrated, export gone, destination paused; its permissions apply at its cont."))
    var suspend = false

    func validate() throws {
        for (name, value) in [("--source", source), ("--destination", destination), ("--nbd", nbd)] where QmpAddress(parsing: value) == nil {
            throw ValidationError("\(name) \(value): expected unix:PATH or tcp:HOST:PORT")
        }
        for uri in [migrateURI, incomingURI ?? migrateURI] where !(uri.hasPrefix("unix:") || uri.hasPrefix("tcp:")) || QmpAddress(parsing: uri) == nil {
            throw ValidationError("migration URI \(uri): expected unix:PATH or tcp:HOST:PORT")
        }
        guard mirrorSpeed >= 0 else { throw ValidationError("--mirror-speed \(mirrorSpeed): expected a number of bytes >= 0") }
        guard timeout > 0, timeout <= 86400 else { throw ValidationError("--timeout \(timeout): expected 0 < seconds <= 86400") }
        for (name, value) in [("--device", device), ("--target-node", targetNode), ("--job-id", jobId), ("--nbd-node-name", nbdNodeName)] where value.isEmpty {
            throw ValidationError("\(name) must not be empty")
        }
    }

    func run() throws {
        let plan = MigrationPlan(
            source: QmpAddress(parsing: source)!, destination: QmpAddress(parsing: destination)!,
            device: device, targetNode: targetNode, guestDevice: guestDevice,
            nbd: QmpAddress(parsing: nbd)!, exportName: exportName ?? targetNode, nbdNodeName: nbdNodeName,
            jobId: jobId, mirrorSpeed: mirrorSpeed, migrateURI: migrateURI, incomingURI: incomingURI ?? migrateURI,
            timeout: timeout, earlyResumeCheck: !noEarlyResumeCheck, suspend: suspend)
        let log = MigrationLog()
        let status: ExitStatus
        do {
            status = try StorageMigration(plan: plan, log: log).run()
        } catch {
            log.refusal(error.message)
            status = error.status
        }
        if status != .permissionsInForce { throw ExitCode(status.rawValue) }
    }
}
