/// Which kind of address a socket is bound to: what QMP shows as `ipv4`/`ipv6` of an inet address.
public enum SocketFamily: Sendable, Hashable {
    case unix
    case ipv4
    case ipv6
}
