/// A format driver that can take a backing node at run time (qcow2).
public protocol BackingCapable: AnyObject {
    func setBacking(_ backing: BdrvChild?)
}

extension Qcow2Driver: BackingCapable {}
