/// Called on the event-loop thread when a request ends: bytes transferred, or the error.
public typealias IoCompletion = (Result<Int, BlockError>) -> Void
