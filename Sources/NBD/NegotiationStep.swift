/// The server's answer to one option: bytes to send, then what happens.
struct NegotiationStep {
    var replies: [UInt8] = []
    var outcome: NegotiationOutcome = .next

    static func close(_ reason: String) -> NegotiationStep { NegotiationStep(outcome: .close(reason)) }
}
