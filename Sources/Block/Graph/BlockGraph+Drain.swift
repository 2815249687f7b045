/// Drained sections (QEMU's bdrv_drained_begin/end): before a change to what is under requests
/// (a snapshot, a node's removal, inactivation, a job's completion), new requests from the
/// affected BlockBackends wait, the ones in flight complete, then the change runs.
extension BlockGraph {
    /// Quiesces `nodes` with everything above and below them, waits until none of those has a
    /// request in flight, then runs `body`, which calls `end` when the change is made (possibly
    /// later, after asynchronous work). `end` lets the held-back requests go, along the new edges.
    /// Jobs holding one of the nodes or a node above them pause for the section (a job draining
    /// for itself passes `excluding`).
    public func drain(_ nodes: [BlockNode], excluding job: Job? = nil, _ body: @escaping (_ end: @escaping () -> Void) -> Void) {
        let section = Self.drainedSection(of: nodes)
        let pausedJobs = jobs.jobs(holding: Self.nodesAndAncestors(nodes), except: job)
        for node in section { node.quiesceCount += 1 }
        for job in pausedJobs { job.drainedBegin() }
        waitUntilIdle(section) { [self] in
            var ended = false
            body { [self] in
                guard !ended else { return }
                ended = true
                for node in section { node.quiesceCount -= 1 }
                for backend in allBackends { backend.releaseHeldRequests() }
                for job in pausedJobs { job.drainedEnd() }
            }
        }
    }

    /// bdrv_drain_poll: waits for each node in turn, and checks them all again afterwards, since
    /// a request completing on one node may have started a nested one on another.
    private func waitUntilIdle(_ section: [BlockNode], then body: @escaping () -> Void) {
        guard let busy = section.first(where: { $0.requestsInFlight > 0 }) else { return body() }
        busy.whenIdle { [self] in
            // Out of the completion's call stack before anything changes under it.
            runSoon { [self] in waitUntilIdle(section, then: body) }
        }
    }

    /// `nodes` and every node above them (bdrv_parent_drained_begin's reach).
    static func nodesAndAncestors(_ nodes: [BlockNode]) -> [BlockNode] {
        var seen = Set<ObjectIdentifier>()
        var result: [BlockNode] = []
        func visit(_ node: BlockNode) {
            guard seen.insert(ObjectIdentifier(node)).inserted else { return }
            result.append(node)
            for edge in node.parents { if let parent = edge.parent as? BlockNode { visit(parent) } }
        }
        nodes.forEach(visit)
        return result
    }

    /// The nodes a drain of `nodes` covers: they and every node above them (whose requests
    /// come down through them), and everything below any of those.
    static func drainedSection(of nodes: [BlockNode]) -> [BlockNode] {
        var visited = Set<ObjectIdentifier>()
        var section: [BlockNode] = []
        func visitDown(_ node: BlockNode) {
            guard visited.insert(ObjectIdentifier(node)).inserted else { return }
            section.append(node)
            for edge in node.children { visitDown(edge.node) }
        }
        var tops: [BlockNode] = []
        var seenUp = Set<ObjectIdentifier>()
        func visitUp(_ node: BlockNode) {
            guard seenUp.insert(ObjectIdentifier(node)).inserted else { return }
            tops.append(node)
            for edge in node.parents { if let parent = edge.parent as? BlockNode { visitUp(parent) } }
        }
        nodes.forEach(visitUp)
        tops.forEach(visitDown)
        return section
    }
}
