import CKVM
@testable import KVM

/// A few real-mode instructions at 0x1000: a byte store into each page asked for, then `out` to
/// port 0x10, which exits to user space (ring-0 code is emulated here: keep it short).
enum RealModeGuest {
    static let codeAddress: UInt64 = 0x1000

    static func runUntilOut(vcpu: Vcpu, memory: GuestMemory, writingPages pages: [Int]) throws {
        var code: [UInt8] = []
        for page in pages {
            precondition(page < 16, "a real-mode offset reaches 64 KiB")
            code += [0xc6, 0x06, 0x00, UInt8(page << 4), UInt8(truncatingIfNeeded: page + 1)]  // mov byte [page*4096], page+1
        }
        code += [0xe6, 0x10, 0xf4]  // out 0x10, al; hlt
        try memory.writeBytes(code, at: codeAddress)
        var sregs = try vcpu.getSpecialRegisters()
        for keyPath in [\kvm_sregs.cs, \.ds, \.es, \.ss] {
            sregs[keyPath: keyPath].base = 0
            sregs[keyPath: keyPath].selector = 0
        }
        try vcpu.setSpecialRegisters(sregs)
        var regs = kvm_regs()
        regs.rip = codeAddress
        regs.rflags = 0x2
        try vcpu.setRegisters(regs)
        while true {
            switch try vcpu.runOnce() {
            case .ioOut(port: 0x10, _, _): return
            case .interrupted: continue
            case let other: throw KvmError("unexpected exit \(other)", errno: 0)
            }
        }
    }
}
