/// QEMU's size syntax: a number with an optional k/M/G/T suffix (powers of 1024).
enum SizeValue {
    static func parse(_ text: String, defaultUnit: UInt64 = 1) -> UInt64? {
        guard let last = text.last else { return nil }
        let units: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "B": 1]
        var digits = text
        var unit = defaultUnit
        if let suffix = units[last] {
            unit = suffix
            digits.removeLast()
        }
        guard let number = UInt64(digits) else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }
}
