import Glibc

extension BlockGraph {
    /// bdrv_inactivate_all: hand every image to another process (end of outgoing migration).
    /// Inside a drained section over the whole graph (requests in flight complete first, new
    /// ones wait), backends stop applying permissions, format drivers write back their caches,
    /// nodes become inactive (no writes) and image locks are dropped.
    public func inactivateAll(completion: @escaping (Result<Void, BlockError>) -> Void) {
        drain(rootNodes) { [self] end in
            let result = Result { () throws(BlockError) in try inactivateAllDrained() }
            end()
            completion(result)
        }
    }

    private func inactivateAllDrained() throws(BlockError) {
        let backends = allBackends.filter { $0.root != nil }
        // bdrv_inactivate_recurse checks every parent before it changes anything: a refusal
        // leaves all backends applying their permissions, so the source VM can carry on.
        if let writer = backends.first(where: { !$0.disablePerm && !$0.allowsInactivation }) {
            throw writer.inactivationRefusal
        }
        for backend in backends {
            try backend.inactivate()
        }
        let order = PermissionTransaction.topologicalOrder(from: rootNodes)
        for node in order where !node.inactive {
            try node.driver.inactivate()
            node.inactive = true
        }
        try refresh(rootNodes)
    }

    /// bdrv_activate_all: take the images back (end of incoming migration, or a failed outgoing
    /// one). As bdrv_co_activate: the node leaves the inactive state and its permissions (image
    /// locks) are taken again first, then the driver re-reads its metadata; a conflict undoes it all.
    /// Guest devices' permissions follow only when the VM resumes (`BlockBackend.resumeAfterMigration`).
    public func activateAll() throws(BlockError) {
        try activate(rootNodes)
    }

    /// bdrv_activate on some nodes and everything below them, children first. blk_exp_add calls
    /// it for the node it exports: an export may be set up before the migration's switch-over
    /// (the target of a storage migration), and must be able to write then.
    public func activate(_ nodes: [BlockNode]) throws(BlockError) {
        let order = PermissionTransaction.topologicalOrder(from: nodes).reversed().filter(\.inactive)
        guard !order.isEmpty else { return }
        for node in order { node.inactive = false }
        do {
            try refresh(rootNodes)
            for node in order { try node.driver.activate() }
        } catch {
            for node in order { node.inactive = true }
            try? refresh(rootNodes)
            throw error
        }
    }
}
