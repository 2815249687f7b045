import Machine

/// What the loop hands the sender at switch-over: the device state, or why there is none.
enum SwitchoverOutcome: Sendable {
    case saved([StateSection])
    /// `inactivated`: the images were inactivated before it failed (the end re-activates them).
    case failed(String, inactivated: Bool)
}
