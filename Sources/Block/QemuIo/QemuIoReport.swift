/// qemu-io's report of a finished transfer (print_report with cvtstr and timestr).
public enum QemuIoReport {
    /// `read 512/512 bytes at offset 0` and `512 bytes, 1 ops; 00.00 sec (3.366 MiB/sec and 6892.6538 ops/sec)`.
    public static func transfer(_ verb: String, offset: Int64, length: Int64, seconds: Double) -> String {
        let time = max(seconds, 1e-6)
        let first = "\(verb) \(length)/\(length) bytes at offset \(offset)\n"
        let total = size(Double(length))
        let rate = size(Double(length) / time)
        let ops = fixed(1 / time, 4)
        return first + "\(total), 1 ops; \(timeText(seconds)) (\(rate)/sec and \(ops) ops/sec)\n"
    }

    /// cvtstr: three decimals, ".000" dropped, binary units.
    static func size(_ value: Double) -> String {
        let units: [(Double, String)] = [(0x1p60, " EiB"), (0x1p50, " PiB"), (0x1p40, " TiB"),
                                         (0x1p30, " GiB"), (0x1p20, " MiB"), (0x1p10, " KiB")]
        var scaled = value
        var suffix = " bytes"
        if let unit = units.first(where: { value >= $0.0 }) {
            scaled = value / unit.0
            suffix = unit.1
        }
        var text = fixed(scaled, 3)
        if text.hasSuffix(".000") { text.removeLast(4) }
        return text + suffix
    }

    /// timestr for under an hour: `SS.CC sec`, or `M:SS.CC` with minutes.
    static func timeText(_ seconds: Double) -> String {
        let centis = Int((seconds * 100).rounded(.down))
        let (minutes, rest) = (centis / 6000, centis % 6000)
        let tail = "\(pad(rest / 100)).\(pad(rest % 100))"
        return minutes > 0 ? "\(minutes):\(tail)" : "\(tail) sec"
    }

    private static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// printf's %.Nf for the non-negative values qemu-io prints.
    static func fixed(_ value: Double, _ places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (value * scale).rounded()
        guard scaled.isFinite, scaled < 9e18 else { return "inf" }
        let whole = Int64(scaled)
        let divisor = Int64(scale)
        var fraction = String(whole % divisor)
        while fraction.count < places { fraction = "0" + fraction }
        return "\(whole / divisor)." + fraction
    }
}
