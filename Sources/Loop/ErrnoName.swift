import CKVM
import Glibc

/// Symbolic errno names (`EINVAL`), as kernel developers read them.
public enum ErrnoName {
    public static func of(_ code: Int32) -> String {
        if let name = strerrorname_np(code) { return String(cString: name) }
        return "errno \(code)"
    }
}
