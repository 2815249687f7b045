/// Carries a non-Sendable value to the loop thread; the caller waits, so access never overlaps.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
}
