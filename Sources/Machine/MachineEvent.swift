/// Things the machine reports to its monitors (QMP turns them into events).
public enum MachineEvent: Sendable {
    case stop
    case resume
    case shutdown(guest: Bool, reason: String)
}
