import QmpClient
import QmpJSON

/// A guest device's edge to its root node as `x-debug-query-block-graph` shows it (QEMU's
/// blk_root child of the device's BlockBackend): what it takes and what it lets others share.
struct DevicePermissions: Sendable, Equatable {
    let device: String
    let node: String
    let perm: [String]
    let shared: [String]

    /// The seed's promise for a writable device without share-rw: it writes and lets nobody else.
    var inForce: Bool { perm.contains("write") && !shared.contains("write") }

    var summary: String {
        "device '\(device)' on node '\(node)' takes [\(perm.joined(separator: ", "))], shares [\(shared.joined(separator: ", "))]"
    }

    /// Finds the device's edge: the backend named `device`, or, without a name, the one named
    /// backend whose root child is `node`. The error says what was found instead.
    static func find(in graph: JSONValue, device: String?, node: String) -> Result<DevicePermissions, MigrationFailure> {
        let nodes = graph["nodes"]?.arrayValue ?? []
        let edges = graph["edges"]?.arrayValue ?? []
        func nodeName(_ id: JSONValue?) -> String? { nodes.first { $0["id"] == id }?["name"]?.stringValue }
        let candidates: [(String, JSONValue)] = nodes.compactMap { entry in
            guard entry["type"]?.stringValue == "block-backend", let name = entry["name"]?.stringValue, !name.isEmpty,
                  let edge = edges.first(where: { $0["parent"] == entry["id"] && $0["name"]?.stringValue == "root" })
            else { return nil }
            return (name, edge)
        }
        let chosen = device.map { wanted in candidates.filter { $0.0 == wanted } }
            ?? candidates.filter { nodeName($0.1["child"]) == node }
        guard chosen.count == 1, let (name, edge) = chosen.first else {
            let what = device.map { "no guest device '\($0)'" } ?? "no single guest device on node '\(node)'"
            let seen = candidates.map { "'\($0.0)' on '\(nodeName($0.1["child"]) ?? "?")'" }.joined(separator: ", ")
            return .failure(MigrationFailure(.refusedBeforeSwitchOver,
                                             "destination: \(what) in x-debug-query-block-graph (devices: \(seen.isEmpty ? "none" : seen)); name it with --guest-device"))
        }
        func names(_ value: JSONValue?) -> [String] { (value?.arrayValue ?? []).compactMap(\.stringValue) }
        return .success(DevicePermissions(device: name, node: nodeName(edge["child"]) ?? "?",
                                          perm: names(edge["perm"]), shared: names(edge["shared-perm"])))
    }
}
