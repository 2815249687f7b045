/// One model-specific register and its value (struct kvm_msr_entry without the padding).
public struct MsrEntry: Sendable, Equatable {
    public let index: UInt32
    public let value: UInt64

    public init(index: UInt32, value: UInt64) {
        self.index = index
        self.value = value
    }
}
