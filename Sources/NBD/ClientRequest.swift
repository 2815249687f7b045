import Block

/// A request the client sent and whose reply has not ended yet.
final class ClientRequest {
    let header: NbdRequestHeader
    /// Where READ data goes.
    let vector: IoVector
    let completion: IoCompletion
    /// The first error chunk of a structured reply.
    var error: BlockError?

    init(header: NbdRequestHeader, vector: IoVector, completion: @escaping IoCompletion) {
        self.header = header
        self.vector = vector
        self.completion = completion
    }

    var isRead: Bool { header.type == NbdCommand.read }

    func finish() {
        if let error {
            completion(.failure(error))
        } else {
            completion(.success(isRead ? vector.totalLength : Int(header.length)))
        }
    }
}
