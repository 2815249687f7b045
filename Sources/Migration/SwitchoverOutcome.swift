import Machine

/// What the loop hands the sender at switch-over: the device state, or why there is none.
enum SwitchoverOutcome: Sendable {
    case saved([StateSection])
    case failed(String)
}
