import Block
import Testing
@testable import QMP

/// drive-mirror's NBD URIs, in the forms QEMU's nbd driver parses.
@Suite struct DriveMirrorTargetTests {
    func parsed(_ uri: String) -> [String]? {
        guard let (server, export) = DriveMirrorTarget.parseNbd(uri) else { return nil }
        let fields = server.keys.sorted().map { key -> String in
            if case .string(let value)? = server[key] { return "\(key)=\(value)" }
            return "\(key)=?"
        }
        return fields + ["export=\(export)"]
    }

    @Test func theUriFormsQemuAccepts() {
        #expect(parsed("nbd:unix:/run/n.sock:exportname=d0") == ["path=/run/n.sock", "type=unix", "export=d0"])
        #expect(parsed("nbd:unix:/run/n.sock") == ["path=/run/n.sock", "type=unix", "export="])
        #expect(parsed("nbd+unix:///d0?socket=/run/n.sock") == ["path=/run/n.sock", "type=unix", "export=d0"])
        #expect(parsed("nbd://127.0.0.1:10810/d0") == ["host=127.0.0.1", "port=10810", "type=inet", "export=d0"])
        #expect(parsed("nbd://localhost") == ["host=localhost", "port=10809", "type=inet", "export="])
        #expect(parsed("nbd:localhost:10809:exportname=x") == ["host=localhost", "port=10809", "type=inet", "export=x"])
    }

    @Test func fileNamesAndBrokenUrisAreNotNbd() {
        #expect(parsed("/var/tmp/target.qcow2") == nil)
        #expect(parsed("nbd+unix:///d0") == nil)
        #expect(parsed("nbd:") == nil)
        #expect(parsed("nbd:a:b:c") == nil)
        #expect(parsed("nbd://") == nil || parsed("nbd://")?.contains("host=") == true)
    }
}
