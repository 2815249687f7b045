import Glibc

/// One blkdebug rule (QEMU's BlkdebugRule): on `event`, in `state` (0: any state), either arm an
/// error for the next matching requests, or move the node to another state.
public struct BlkdebugRule: Equatable, Sendable {
    public enum Action: Equatable, Sendable {
        /// `errno` for requests of `ioTypes` that touch byte `offset` (nil: any request); `once`
        /// removes the rule after its first error; `immediately` fails without a trip through the loop.
        case injectError(errno: Int32, offset: Int64?, ioTypes: Set<BlkdebugIoType>, once: Bool, immediately: Bool)
        case setState(newState: Int64)
    }

    public var event: BlkdebugEvent
    public var state: Int64
    public var action: Action

    public init(event: BlkdebugEvent, state: Int64 = 0, action: Action) {
        self.event = event
        self.state = state
        self.action = action
    }

    /// An inject-error rule as add_rule fills in the defaults: EIO, any sector, the default types.
    public static func injectError(_ event: BlkdebugEvent, state: Int64 = 0, errno: Int32 = EIO, sector: Int64? = nil,
                                   ioType: BlkdebugIoType? = nil, once: Bool = false, immediately: Bool = false) -> BlkdebugRule {
        // add_rule: sector -1 (or no sector) means any offset; the offset is the sector's first byte.
        let offset = sector.flatMap { $0 == -1 ? nil : $0.multipliedReportingOverflow(by: 512).partialValue }
        return BlkdebugRule(event: event, state: state,
                            action: .injectError(errno: errno, offset: offset, ioTypes: ioType.map { [$0] } ?? BlkdebugIoType.defaultMask,
                                                 once: once, immediately: immediately))
    }

    public static func setState(_ event: BlkdebugEvent, state: Int64 = 0, newState: Int64) -> BlkdebugRule {
        BlkdebugRule(event: event, state: state, action: .setState(newState: newState))
    }

    var isInjectError: Bool {
        if case .injectError = action { return true }
        return false
    }

    /// rule_check's match: the type is in the rule's mask, and the rule has no offset or the
    /// request's bytes cover it (a request of no bytes, a flush, only matches a rule without one).
    func fails(offset: Int64, bytes: Int64, ioType: BlkdebugIoType) -> Bool {
        guard case .injectError(_, let target, let types, _, _) = action, types.contains(ioType) else { return false }
        guard let target else { return true }
        return bytes > 0 && target >= offset && target - offset < bytes
    }
}
