import CSeccomp
import Glibc
import Sandbox
import XCTest

final class SyscallAllowlistTests: XCTestCase {
    /// A misspelt name would otherwise only show when a sandboxed svmm dies on the call.
    func testEveryBaseNameResolvesOnThisArchitecture() {
        for rule in SyscallAllowlist.base {
            XCTAssertGreaterThanOrEqual(seccomp_syscall_resolve_name(rule.name), 0, rule.name)
        }
    }

    func testGroupNamesAreKnownToLibseccomp() {
        for group in SyscallGroup.allCases {
            for rule in SyscallAllowlist.rules(for: group) {
                XCTAssertNotEqual(seccomp_syscall_resolve_name(rule.name), __NR_SCMP_ERROR, rule.name)
            }
        }
    }

    func testThreadsOnlyCloneUnlessSpawnIsAllowed() throws {
        var options = SandboxOptions()
        options.enabled = true
        options.spawn = .deny
        let strict = SyscallAllowlist.rules(for: options)
        let clone = try XCTUnwrap(strict.first { $0.name == "clone" })
        XCTAssertEqual(clone.condition?.mask, SyscallAllowlist.cloneThread)
        XCTAssertFalse(strict.contains { $0.name == "execve" || $0.name == "fork" })
        options.spawn = .allow
        let spawning = SyscallAllowlist.rules(for: options)
        XCTAssertEqual(spawning.filter { $0.name == "clone" }, [SyscallRule("clone")])
        XCTAssertTrue(spawning.contains { $0.name == "execve" })
    }

    func testQemuDefaultsRefuseOnlyObsoleteCalls() {
        let options = SandboxOptions()
        XCTAssertEqual(options.allowedGroups, [.elevatePrivileges, .spawn, .resourceControl])
        let rules = SyscallAllowlist.rules(for: options)
        XCTAssertFalse(rules.contains { $0.name == "_sysctl" })
        XCTAssertEqual(rules.filter { $0.name == "prlimit64" }, [SyscallRule("prlimit64")])
    }

    func testClone3FailsWithEnosysSoGlibcFallsBack() throws {
        let rule = try XCTUnwrap(SyscallAllowlist.base.first { $0.name == "clone3" })
        XCTAssertEqual(rule.action, .fail(ENOSYS))
    }
}
