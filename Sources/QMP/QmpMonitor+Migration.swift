import Machine
import Migration

/// QEMU 7.2's migration commands (qapi/migration.json): marshalling only; the logic is in
/// Migration's MigrationController.
extension QmpMonitor {
    func migrationCommands() -> [QmpCommand] {
        [
            QmpCommand("migrate", [.required("uri", .string), .optional("blk", .bool), .optional("inc", .bool),
                                   .optional("detach", .bool), .optional("resume", .bool)]) { [unowned self] arguments throws(QmpError) in
                // `detach` is ignored by QEMU too; the others change what is migrated and are not offered.
                if arguments.bool("blk") == true || arguments.bool("inc") == true {
                    throw QmpError("Block migration (blk, inc) is not supported by svmm: mirror the disks with blockdev-mirror")
                }
                if arguments.bool("resume") == true { throw QmpError("svmm has no postcopy migration to resume") }
                try migrationCall { () throws(MigrationError) in try migration.migrate(to: arguments.string("uri")!) }
                return .emptyObject
            },
            QmpCommand("migrate_cancel") { [unowned self] _ in
                migration.cancel()
                return .emptyObject
            },
            QmpCommand("migrate-continue", [.required("state", .string)]) { [unowned self] arguments throws(QmpError) in
                try migrationCall { () throws(MigrationError) in try migration.continueSwitchover(from: arguments.string("state")!) }
                return .emptyObject
            },
            QmpCommand("migrate-incoming", [.required("uri", .string)]) { [unowned self] arguments throws(QmpError) in
                try migrationCall { () throws(MigrationError) in try migration.startIncoming(arguments.string("uri")!, fromCommandLine: false) }
                return .emptyObject
            },
            QmpCommand("migrate-start-postcopy") { [unowned self] _ throws(QmpError) in
                try migrationCall { () throws(MigrationError) in try migration.startPostcopy() }
                return .emptyObject
            },
            QmpCommand("query-migrate") { [unowned self] _ in Self.json(migration.info) },
            QmpCommand("migrate-set-capabilities", [.required("capabilities", .array)]) { [unowned self] arguments throws(QmpError) in
                let changes = try Self.capabilityList(arguments.values["capabilities"])
                try migrationCall { () throws(MigrationError) in try migration.setCapabilities(changes) }
                return .emptyObject
            },
            QmpCommand("query-migrate-capabilities") { [unowned self] _ in
                .array(MigrationCapability.allCases.map { capability in
                    .object([("state", .bool(migration.capabilities.contains(capability))), ("capability", .string(capability.rawValue))])
                })
            },
            QmpCommand("migrate-set-parameters", [.optional("max-bandwidth", .uint64), .optional("downtime-limit", .uint64)]) { [unowned self] arguments throws(QmpError) in
                try migrationCall { () throws(MigrationError) in
                    try migration.setParameters(maxBandwidth: arguments.uint64("max-bandwidth"), downtimeLimit: arguments.uint64("downtime-limit"))
                }
                return .emptyObject
            },
            QmpCommand("query-migrate-parameters") { [unowned self] _ in
                .object([("downtime-limit", .uint(migration.parameters.downtimeLimit)),
                         ("max-bandwidth", .uint(migration.parameters.maxBandwidth))])
            },
        ]
    }

    private func migrationCall(_ body: () throws(MigrationError) -> Void) throws(QmpError) {
        // The error's own kind (QEMU's migration errors are GenericError), not a flattened text.
        do { try body() } catch { throw QmpError(error) }
    }

    /// `[{capability, state}]`, checked as QAPI's visitor checks MigrationCapabilityStatusList.
    private static func capabilityList(_ value: JSONValue?) throws(QmpError) -> [(MigrationCapability, Bool)] {
        guard case .array(let items)? = value else { return [] }
        var changes: [(MigrationCapability, Bool)] = []
        for (index, item) in items.enumerated() {
            let path = "capabilities[\(index)]"
            guard case .object(let members) = item else { throw QmpError("Invalid parameter type for '\(path)', expected: object") }
            for (key, _) in members where key != "capability" && key != "state" {
                throw QmpError("Parameter '\(path).\(key)' is unexpected")
            }
            guard let name = item["capability"] else { throw QmpError("Parameter '\(path).capability' is missing") }
            guard let text = name.stringValue else { throw QmpError("Invalid parameter type for '\(path).capability', expected: string") }
            guard let stateValue = item["state"] else { throw QmpError("Parameter '\(path).state' is missing") }
            guard case .bool(let state) = stateValue else { throw QmpError("Invalid parameter type for '\(path).state', expected: boolean") }
            guard let capability = MigrationCapability(rawValue: text) else {
                throw QmpError("Parameter 'capability' does not accept value '\(text)'")
            }
            changes.append((capability, state))
        }
        return changes
    }

    /// MigrationInfo in QEMU 7.2's shape and member order.
    static func json(_ info: MigrationInfo) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let stats = info.stats, info.showsExpectedDowntime { members.append(("expected-downtime", .int(stats.expectedDowntime))) }
        if let status = info.status { members.append(("status", .string(status.rawValue))) }
        if let stats = info.stats {
            members.append(("setup-time", .int(stats.setupTime)))
            if info.showsDowntime { members.append(("downtime", .int(stats.downtime))) }
            members.append(("total-time", .int(stats.totalTime)))
            members.append(("ram", ramJSON(stats)))
        }
        if let error = info.errorDescription { members.append(("error-desc", .string(error))) }
        if !info.listeningOn.isEmpty { members.append(("socket-address", .array(info.listeningOn.map(socketJSON)))) }
        return .object(members)
    }

    private static func ramJSON(_ stats: MigrationStats) -> JSONValue {
        .object([
            ("total", .uint(stats.total)), ("postcopy-requests", .int(0)), ("dirty-sync-count", .uint(stats.dirtySyncCount)),
            ("multifd-bytes", .int(0)), ("pages-per-second", .uint(stats.pagesPerSecond)), ("downtime-bytes", .uint(stats.downtimeBytes)),
            ("page-size", .int(4096)), ("remaining", .uint(stats.remaining)), ("postcopy-bytes", .int(0)), ("mbps", .double(stats.mbps)),
            ("transferred", .uint(stats.transferred)), ("dirty-sync-missed-zero-copy", .int(0)), ("precopy-bytes", .uint(stats.precopyBytes)),
            ("duplicate", .uint(stats.duplicate)), ("dirty-pages-rate", .uint(stats.dirtyPagesRate)), ("skipped", .int(0)),
            ("normal-bytes", .uint(stats.normalBytes)), ("normal", .uint(stats.normal)),
        ])
    }

    /// A listener's numeric address, as QEMU's socket_sockaddr_to_address_inet fills it: the
    /// family it is bound to is the one flag set.
    private static func socketJSON(_ bound: BoundSocketAddress) -> JSONValue {
        switch bound.address {
        case .unix(let path): .object([("path", .string(path)), ("type", .string("unix"))])
        case .inet(let host, let port): .object([("port", .string(port)), (bound.family == .ipv6 ? "ipv6" : "ipv4", .bool(true)),
                                                 ("host", .string(host)), ("type", .string("inet"))])
        }
    }

    func emit(_ event: MigrationEvent) {
        switch event {
        case .status(let status): emit("MIGRATION", data: .object([("status", .string(status.rawValue))]))
        case .pass(let number): emit("MIGRATION_PASS", data: .object([("pass", .int(Int64(number)))]))
        }
    }
}
