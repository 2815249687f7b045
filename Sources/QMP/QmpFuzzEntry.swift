import Block

/// QMP's fuzz entry (`make fuzz`, target `qmp`): bytes from a monitor client, through the same
/// framing, JSON parsing, request checks and argument decoding a session applies.
public enum QmpFuzzEntry {
    /// Schemas of the shapes the command table uses, so every `Kind` is checked against every value.
    static var schemas: [[QmpArguments.Member]] { [
        [.required("device", .string), .optional("force", .bool)],
        [.required("node-name", .string), .required("size", .int)],
        [.optional("max-connections", .uint32), .required("addr", .object)],
        [.optional("enable", .array), .optional("data", .any)],
    ] }

    /// Never traps. The first byte, when there is one, sets how the rest is cut into reads, so
    /// messages split across reads are covered as a socket delivers them.
    public static func fuzz(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let body = data.dropFirst()
        let chunk = Int(first) + 1
        var splitter = JSONStreamSplitter()
        var pieces: [JSONStreamSplitter.Piece] = []
        var start = body.startIndex
        while start < body.endIndex {
            let end = min(start + chunk, body.endIndex)
            pieces += splitter.feed(body[start..<end])
            start = end
        }
        for case .text(let bytes) in pieces {
            guard let request = try? JSONParser.parse(bytes) else { continue }
            _ = request.serialized
            guard let (_, arguments) = try? QmpMonitor.parseRequest(request) else { continue }
            for schema in schemas + [nil] {
                guard let checked = try? QmpArguments(arguments, schema: schema) else { continue }
                for member in schema ?? [] {
                    _ = (checked.string(member.name), checked.bool(member.name), checked.int(member.name), checked.uint32(member.name))
                }
            }
            // drive-mirror's target: a file name or an NBD URI, parsed from any string argument.
            if case .object(let members) = arguments {
                for case (_, .string(let text)) in members { _ = DriveMirrorTarget.parseNbd(text) }
            }
            // blockdev-add and friends decode their arguments into the option tree.
            if case .object(let members) = arguments.optionValue { _ = try? BlockdevOptions(members, fromCommandLine: false) }
        }
    }
}
