import Block

/// Data being received straight into its destination (a WRITE's buffer, a READ's vector).
struct IncomingPayload {
    let vector: IoVector
    private(set) var received = 0

    init(_ vector: IoVector) { self.vector = vector }

    var remaining: Int { vector.totalLength - received }
    var isComplete: Bool { remaining == 0 }

    mutating func advance(_ count: Int) { received += count }
}
