import Glibc

/// The header extensions between the header and the backing file name that svmm reads
/// (backing format, feature names, and those of features it refuses) or writes on create.
struct Qcow2HeaderExtensions {
    /// One entry of the feature name table: type 0 incompatible, 1 compatible, 2 autoclear.
    struct Feature: Equatable {
        let type: UInt8
        let bit: UInt8
        let name: String
    }

    /// The table `qemu-img create` (7.2) writes into every version 3 image.
    static let standardFeatures: [Feature] = [
        Feature(type: 0, bit: 0, name: "dirty bit"),
        Feature(type: 0, bit: 1, name: "corrupt bit"),
        Feature(type: 0, bit: 2, name: "external data file"),
        Feature(type: 0, bit: 3, name: "compression type"),
        Feature(type: 0, bit: 4, name: "extended L2 entries"),
        Feature(type: 1, bit: 0, name: "lazy refcounts"),
        Feature(type: 2, bit: 0, name: "bitmaps"),
        Feature(type: 2, bit: 1, name: "raw external data"),
    ]
    static let featureEntrySize = 48

    var backingFormat: String?
    var features: [Feature] = []
    var hasBitmaps = false
    var hasCryptoHeader = false
    var dataFile: String?

    init() {}

    /// Reads the extensions in `cluster[start..<end]`, as QEMU's qcow2_read_extensions does.
    init(parsing cluster: [UInt8], from start: Int, to end: Int) throws(BlockError) {
        var offset = start
        while offset < end {
            guard offset + 8 <= cluster.count else { throw BlockError("Header extension too large", errno: EINVAL) }
            let type = Qcow2Bytes.uint32(cluster, at: offset)
            let length = Int(Qcow2Bytes.uint32(cluster, at: offset + 4))
            offset += 8
            guard offset <= end, length <= end - offset else { throw BlockError("Header extension too large", errno: EINVAL) }
            if type == Qcow2Layout.extensionEnd { return }
            try read(type: type, data: Array(cluster[offset..<offset + length]))
            offset += (length + 7) & ~7
        }
    }

    private mutating func read(type: UInt32, data: [UInt8]) throws(BlockError) {
        switch type {
        case Qcow2Layout.extensionBackingFormat:
            guard data.count <= Qcow2Layout.maxBackingFormatLength else {
                throw BlockError("ERROR: ext_backing_format: len=\(data.count) too large (>=16)", errno: EINVAL)
            }
            backingFormat = String(decoding: data, as: UTF8.self)
        case Qcow2Layout.extensionFeatureTable:
            features = Self.parseFeatures(data)
        case Qcow2Layout.extensionBitmaps:
            hasBitmaps = true
        case Qcow2Layout.extensionCrypto:
            hasCryptoHeader = true
        case Qcow2Layout.extensionDataFile:
            dataFile = String(decoding: data, as: UTF8.self)
        default:
            break  // unknown extensions are kept as they are: svmm never rewrites this area
        }
    }

    private static func parseFeatures(_ data: [UInt8]) -> [Feature] {
        stride(from: 0, to: data.count - featureEntrySize + 1, by: featureEntrySize).map { start in
            let nameBytes = data[start + 2..<start + featureEntrySize].prefix { $0 != 0 }
            return Feature(type: data[start], bit: data[start + 1], name: String(decoding: nameBytes, as: UTF8.self))
        }
    }

    /// QEMU's report_unsupported_feature: names from the image's table (or the standard one),
    /// then whatever bits no table names.
    func unsupportedFeatures(_ mask: UInt64) -> String {
        var left = mask
        var names: [String] = []
        for feature in features + Self.standardFeatures where feature.type == 0 && feature.bit < 64 {
            let bit: UInt64 = 1 << UInt64(feature.bit)
            if left & bit != 0 {
                names.append(feature.name)
                left &= ~bit
            }
        }
        if left != 0 { names.append("Unknown incompatible feature: \(String(left, radix: 16))") }
        return "Unsupported qcow2 feature(s): " + names.joined(separator: ", ")
    }

    /// The extension area `qemu-img create` writes: backing format, feature table, end marker.
    static func encoded(backingFormat: String?, featureTable: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        if let backingFormat { append(type: Qcow2Layout.extensionBackingFormat, data: Array(backingFormat.utf8), to: &bytes) }
        if featureTable { append(type: Qcow2Layout.extensionFeatureTable, data: encodedFeatures(), to: &bytes) }
        append(type: Qcow2Layout.extensionEnd, data: [], to: &bytes)
        return bytes
    }

    private static func append(type: UInt32, data: [UInt8], to bytes: inout [UInt8]) {
        var header = [UInt8](repeating: 0, count: 8)
        Qcow2Bytes.put(type, into: &header, at: 0)
        Qcow2Bytes.put(UInt32(data.count), into: &header, at: 4)
        bytes += header + data + [UInt8](repeating: 0, count: (8 - data.count % 8) % 8)
    }

    private static func encodedFeatures() -> [UInt8] {
        standardFeatures.flatMap { feature in
            let name = Array(feature.name.utf8)
            return [feature.type, feature.bit] + name + [UInt8](repeating: 0, count: featureEntrySize - 2 - name.count)
        }
    }
}
