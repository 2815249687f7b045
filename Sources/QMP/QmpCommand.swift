/// One QMP command: its argument schema (nil: the handler checks) and what it does.
/// Handlers run on the event-loop thread and either return at once or answer later.
public struct QmpCommand {
    public typealias Reply = (Result<JSONValue, QmpError>) -> Void

    public let name: String
    let schema: [QmpArguments.Member]?
    let run: (QmpArguments, @escaping Reply) -> Void

    /// A command that answers before returning.
    init(_ name: String, _ schema: [QmpArguments.Member]? = [], _ body: @escaping (QmpArguments) throws(QmpError) -> JSONValue) {
        self.name = name
        self.schema = schema
        self.run = { arguments, reply in
            do throws(QmpError) { reply(.success(try body(arguments))) } catch { reply(.failure(error)) }
        }
    }

    /// A command that answers later (it waits for something on the loop).
    init(async name: String, _ schema: [QmpArguments.Member]? = [], _ body: @escaping (QmpArguments, @escaping Reply) -> Void) {
        self.name = name
        self.schema = schema
        self.run = body
    }
}
