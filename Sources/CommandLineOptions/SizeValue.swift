/// QEMU's size syntax: a number with an optional k/M/G/T/P/E suffix (powers of 1024).
enum SizeValue {
    enum Failure: Error {
        /// Not a size at all: parse_option_size's "expects a non-negative number below 2^64".
        case malformed
        /// A size that does not fit in 64 bits: "Value '...' is out of range for parameter '...'".
        case outOfRange
    }

    static func parse(_ text: String, defaultUnit: UInt64 = 1) throws(Failure) -> UInt64 {
        guard let last = text.last else { throw .malformed }
        let units: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
                                          "P": 1 << 50, "E": 1 << 60, "B": 1]
        var digits = text
        var unit = defaultUnit
        if let suffix = units[last] {
            unit = suffix
            digits.removeLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw .malformed }
        // All digits: UInt64(_:) fails only when the number itself is beyond 64 bits.
        guard let number = UInt64(digits) else { throw .outOfRange }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit)
        if overflow { throw .outOfRange }
        return bytes
    }
}
