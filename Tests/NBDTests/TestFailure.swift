/// A test precondition that did not hold (a missing tool, a peer that did not start).
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
