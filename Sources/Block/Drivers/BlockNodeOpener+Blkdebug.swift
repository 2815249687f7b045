import Glibc

extension BlockNodeOpener {
    /// blkdebug_open: the config file's rules are read first, then the image is opened as the
    /// filtered child (BDRV_CHILD_FILTERED | BDRV_CHILD_PRIMARY).
    func openBlkdebug(name: String, options: BlockdevOptions, _ blkdebug: BlkdebugOptions, inherited: Inherited,
                      created: inout [BlockNode]) throws(BlockError) -> BlockNode {
        var rules: [BlkdebugRule] = []
        if let config = blkdebug.config {
            do { rules = try BlkdebugConfigParser.parseFile(config) } catch { throw BlockError(error.description, errno: EINVAL) }
        }
        rules += blkdebug.rules
        let image = try child(blkdebug.image, key: "image", inherited: inherited, created: &created)
        let node = try addOpening(name: name, options: options, driverName: "blkdebug",
                                  readOnly: (options.readOnly ?? inherited.readOnly) || image.readOnly,
                                  filename: "blkdebug:\(blkdebug.config ?? ""):\(image.filename)", created: &created)
        let edge = try graph.attachChild(image, to: node, name: "image", role: .root)
        node.driver = BlkdebugDriver(image: edge, rules: rules) { [weak graph] job in
            guard let graph else { return }
            graph.runSoon(job)
        }
        return node
    }
}
