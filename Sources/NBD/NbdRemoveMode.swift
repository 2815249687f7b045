/// `nbd-server-remove`/`block-export-del` mode: `safe` refuses while clients are connected,
/// `hard` disconnects them.
public enum NbdRemoveMode: String, Sendable {
    case safe
    case hard
}
