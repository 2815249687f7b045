@testable import Devices

/// Records what a device asks of its transport, so tests can see interrupts and device errors.
final class RecordingTransportLink: VirtioTransportLink {
    var interrupts = 0
    var errors: [String] = []
    func signalUsedBuffers() { interrupts += 1 }
    func deviceError(_ reason: String) { errors.append(reason) }
}
