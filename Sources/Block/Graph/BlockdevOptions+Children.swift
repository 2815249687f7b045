extension BlockdevOptions.Driver {
    /// Format drivers open children (file, backing) before they take their node name.
    var hasChildren: Bool {
        switch self {
        case .raw, .qcow2: true
        case .file, .nullCo, .nbd, .blkdebug: false  // blkdebug opens its image once named (bdrv_open_common)
        }
    }
}

extension BlockdevOptions {
    /// Every NBD client node these options open, children included, in the order the opener opens them.
    public var nbdClients: [NbdClientOptions] {
        switch driver {
        case .nbd(let nbd): [nbd]
        case .raw(let file, _, _): file.nbdClients
        case .qcow2(let file, let backing): file.nbdClients + (backing?.nbdClients ?? [])
        case .blkdebug(let blkdebug): blkdebug.image.nbdClients
        case .file, .nullCo: []
        }
    }
}

extension BlockdevOptions.Reference {
    var nbdClients: [NbdClientOptions] {
        if case .options(let options) = self { return options.nbdClients }
        return []
    }
}
