/// A blkdebug node's rules and state (QEMU's BDRVBlkdebugState without the suspend actions):
/// events arm inject-error rules and change the state; requests check the armed rules.
/// Lives on the event-loop thread.
public final class BlkdebugRules {
    /// The node's state; it starts at 1 (blkdebug_open).
    public private(set) var state: Int64 = 1
    /// Every rule, in the order the options and config file gave them.
    public private(set) var rules: [BlkdebugRule]
    /// The inject-error rules the last event that had any armed (QEMU's active_rules), first to fail first.
    public private(set) var active: [BlkdebugRule] = []

    public init(_ rules: [BlkdebugRule]) {
        self.rules = rules
    }

    /// blkdebug_debug_event: every rule for `event` whose state is 0 or the current one acts.
    /// QEMU keeps each event's rules newest first, so of several matching set-state rules the
    /// first one given wins, and the armed inject-error rules keep the order they were given in.
    /// An event that arms none leaves the armed ones as they are.
    public func handle(_ event: BlkdebugEvent) {
        let matching = rules.filter { $0.event == event && ($0.state == 0 || $0.state == state) }
        let errors = matching.filter(\.isInjectError)
        if !errors.isEmpty { active = errors }
        for rule in matching {
            if case .setState(let newState) = rule.action {
                state = newState
                break
            }
        }
    }

    /// rule_check: the error a request fails with, if an armed rule matches it. A `once` rule is
    /// removed when it fires; `immediately` says the error comes back without a trip through the loop.
    public func check(offset: Int64, bytes: Int64, ioType: BlkdebugIoType) -> (errno: Int32, immediately: Bool)? {
        guard let index = active.firstIndex(where: { $0.fails(offset: offset, bytes: bytes, ioType: ioType) }),
              case .injectError(let errno, _, _, let once, let immediately) = active[index].action else { return nil }
        // QEMU's rule_check stops at the first match; a rule with errno 0 then lets the request through.
        guard errno != 0 else { return nil }
        if once {
            let rule = active.remove(at: index)
            if let stored = rules.firstIndex(of: rule) { rules.remove(at: stored) }
        }
        return (errno, immediately)
    }
}
