import Block

extension QmpMonitor {
    /// BLOCK_IO_ERROR with QEMU 7.2's members and order (send_qmp_error_event).
    func emitBlockIoError(_ report: BlockIoErrorReport) {
        var data: [(String, JSONValue)] = [("device", .string(report.device))]
        if let node = report.nodeName { data.append(("node-name", .string(node))) }
        data += [("operation", .string(report.isRead ? "read" : "write")), ("action", .string(report.action.rawValue))]
        if let nospace = report.nospace { data.append(("nospace", .bool(nospace))) }
        data.append(("reason", .string(report.reason)))
        emit("BLOCK_IO_ERROR", data: .object(data))
    }
}
