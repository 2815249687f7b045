import Block

extension QmpMonitor {
    /// BLOCK_IO_ERROR with QEMU 7.2's members, in the order its QDict puts them on the wire
    /// (device, nospace, node-name, reason, operation, action).
    func emitBlockIoError(_ report: BlockIoErrorReport) {
        var data: [(String, JSONValue)] = [("device", .string(report.device))]
        if let nospace = report.nospace { data.append(("nospace", .bool(nospace))) }
        if let node = report.nodeName { data.append(("node-name", .string(node))) }
        data += [("reason", .string(report.reason)), ("operation", .string(report.isRead ? "read" : "write")),
                 ("action", .string(report.action.rawValue))]
        emit("BLOCK_IO_ERROR", data: .object(data))
    }
}
