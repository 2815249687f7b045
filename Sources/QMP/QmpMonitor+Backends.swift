import Block

/// `x-svmm-query-backends`: what x-debug-query-block-graph cannot show. The graph gives each
/// BlockBackend's root edge as it is *applied*; a guest device attached during an incoming
/// migration (`disablePerm`) has recorded permissions that are not applied yet, and this query
/// says so, for `make graph` to draw them as deferred. svmm only (QEMU has no such command).
extension QmpMonitor {
    func backendCommands() -> [QmpCommand] {
        [QmpCommand("x-svmm-query-backends") { [unowned self] _ in Self.backendsInfo(machine.graph) }]
    }

    /// One entry a backend, in x-debug-query-block-graph's order, so `id` is the id the graph
    /// gives the same backend: `{id, name, device?, node-name?, perm, shared-perm, applied}`;
    /// `perm`/`shared-perm` are the recorded ones (highest bit first, as the graph lists them).
    static func backendsInfo(_ graph: BlockGraph) -> JSONValue {
        .array(graph.allBackends.enumerated().map { index, backend in
            var members: [(String, JSONValue)] = [
                ("id", .int(Int64(index + 1))),
                ("name", .string(backend.name ?? backend.deviceName ?? "")),
            ]
            if let device = backend.deviceName { members.append(("device", .string(device))) }
            if let node = backend.node { members.append(("node-name", .string(node.nodeName))) }
            members += [
                ("perm", .array(backend.perm.qapiNames.reversed().map(JSONValue.string))),
                ("shared-perm", .array(backend.sharedPerm.qapiNames.reversed().map(JSONValue.string))),
                ("applied", .bool(!backend.disablePerm)),
            ]
            return .object(members)
        })
    }
}
