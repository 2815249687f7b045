extension BlockdevOptions.Driver {
    /// Format drivers open children (file, backing) before they take their node name.
    var hasChildren: Bool {
        switch self {
        case .raw, .qcow2: true
        case .file, .nullCo, .nbd: false
        }
    }
}
