/// Option codes of the negotiation phase.
public enum NbdOption {
    public static let exportName: UInt32 = 1
    public static let abort: UInt32 = 2
    public static let list: UInt32 = 3
    public static let peekExport: UInt32 = 4
    public static let startTLS: UInt32 = 5
    public static let info: UInt32 = 6
    public static let go: UInt32 = 7
    public static let structuredReply: UInt32 = 8
    public static let listMetaContext: UInt32 = 9
    public static let setMetaContext: UInt32 = 10

    /// QEMU's nbd_opt_lookup.
    public static func name(_ option: UInt32) -> String {
        switch option {
        case exportName: "export name"
        case abort: "abort"
        case list: "list"
        case peekExport: "peek export"
        case startTLS: "starttls"
        case info: "info"
        case go: "go"
        case structuredReply: "structured reply"
        case listMetaContext: "list meta context"
        case setMetaContext: "set meta context"
        default: "<unknown>"
        }
    }
}
