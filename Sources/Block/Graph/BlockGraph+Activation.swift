import Glibc

extension BlockGraph {
    /// bdrv_inactivate_all: hand every image to another process (end of outgoing migration).
    /// Backends stop applying permissions, format drivers write back their caches, nodes become
    /// inactive (no writes) and image locks are dropped.
    public func inactivateAll() throws(BlockError) {
        for backend in allBackends where backend.root != nil {
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
    /// one). Metadata is re-read and locks are taken again; a lock conflict undoes it all.
    /// Guest devices' permissions follow only when the VM resumes (`BlockBackend.resumeAfterMigration`).
    public func activateAll() throws(BlockError) {
        let order = PermissionTransaction.topologicalOrder(from: rootNodes).reversed().filter(\.inactive)
        for node in order {
            node.inactive = false
            do {
                try node.driver.activate()
            } catch {
                for other in order { other.inactive = true }
                throw error
            }
        }
        do {
            try refresh(rootNodes)
        } catch {
            for node in order { node.inactive = true }
            try? refresh(rootNodes)
            throw error
        }
    }
}
