import Foundation
import TestCertificateAuthority
import XCTest

/// Portal certificates across two real gateway processes on one real redis-server: an upload
/// through node A's admin listener reaches node B's certificate feed (its log, its metrics, its
/// admin API), a portal domain removed in the tree stops its certificate from being served, and
/// the key is in no log line and no answer of either node.
final class CertificateUploadNodesTests: AdminTestCase {
    var opsPort = 0
    let keyEncryptionKey = Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString() + "\n"
    static let authority = try! TestCertificateAuthority()

    override func setUp() async throws {
        try await super.setUp()
        self.opsPort = try freePort()
        for (index, adminPort) in [self.adminPort, try freePort()].enumerated() {
            var extra = "certificateUploads:\n  keyEncryptionKeyFile: certificate-kek\n"
            if index == 1 { extra += "ops: { address: 127.0.0.1, port: \(self.opsPort) }\n" }
            let gateway = try self.addNode(
                adminPort: adminPort, settings: self.adminSettings(adminPort: adminPort, extra: extra), files: ["tenants.yaml": Self.tree, "certificate-kek": self.keyEncryptionKey]
            )
            XCTAssertTrue(gateway.waitForLog("uploaded certificates installed"), "the feed delivered the (empty) set once it read the store")
        }
    }

    override func tearDown() async throws {
        self.stopNodes()
        try await super.tearDown()
    }

    /// Waits (at most about 10 s) until node `index`'s log contains `text`; returns the seconds it took.
    func waitForLog(_ text: String, node index: Int) -> Double? {
        let start = Date()
        return self.nodes[index].gateway.waitForLog(text) ? Date().timeIntervalSince(start) : nil
    }

    func testAnUploadOnOneNodeIsServedByTheOtherAndTheKeyIsNeverShown() throws {
        let issued = try Self.authority.issueServer(domains: ["portal.p1.test"])
        let partner = try self.token("partner-admin", "p1")
        let body = "{\"certificate\":\(Self.quoted(issued.chainPEM)),\"key\":\(Self.quoted(issued.keyPEM))}"
        let path = "/admin/v1/nodes/p1/certificates/portal.p1.test"

        let uploaded = try self.admin("PUT", path, token: partner, body: body, port: self.nodes[0].adminPort)
        XCTAssertEqual(uploaded.status, 201, uploaded.text)
        let fingerprint = try XCTUnwrap(try uploaded.json()["fingerprint"] as? String)

        // Node B installs it: its feed's log line names the fingerprint, its metrics count it.
        let seconds = self.waitForLog("sha256:\(fingerprint) v1", node: 1)
        XCTAssertNotNil(seconds, "node B never installed the upload")
        // Observed, not asserted: the log is read every 20 ms, so 0.000 means within 20 ms.
        print("an upload on node A was installed on node B \(String(format: "%.3f", seconds ?? -1)) s after its 201 was read")
        let metrics = try request(port: self.opsPort, "GET", "/metrics", headers: [("Connection", "close")]).text
        XCTAssertTrue(metrics.contains("erp_gateway_uploaded_certificates{state=\"served\"} 1"), metrics)
        XCTAssertTrue(metrics.contains("# HELP erp_gateway_uploaded_certificates_next_expiry_timestamp_seconds"), metrics)
        XCTAssertFalse(metrics.contains("erp_gateway_uploaded_certificates_next_expiry_timestamp_seconds 0\n"), metrics)
        let families = metrics.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) }
        XCTAssertEqual(Set(families).subtracting(try DeployFilesTests.documentedMetrics()), [], "series docs/operations.md does not list")
        let exposition = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try metrics.write(to: exposition, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: exposition) }
        let (lintStatus, lint) = try runCommand(URL(fileURLWithPath: "/bin/sh"), ["-c", "/usr/bin/promtool check metrics < '\(exposition.path)'"])
        XCTAssertEqual(lintStatus, 0, lint)
        XCTAssertEqual(lint.trimmingCharacters(in: .whitespacesAndNewlines), "", lint)
        let read = try self.admin("GET", path, token: partner, port: self.nodes[1].adminPort)
        XCTAssertEqual(read.status, 200, read.text)
        XCTAssertEqual(try read.json()["fingerprint"] as? String, fingerprint)
        XCTAssertEqual(try read.json()["served"] as? Bool, true)

        // The portal domain is taken off p1: no node serves its certificate any more; it is still
        // listed, as not served, for p1's admin to delete.
        let removed = try self.admin(
            "PATCH", "/admin/v1/nodes/p1", token: partner, ifMatch: try self.etag("p1"), body: #"{"portalDomains":[]}"#, port: self.nodes[0].adminPort
        )
        XCTAssertEqual(removed.status, 200, removed.text)
        XCTAssertNotNil(self.waitForLog("removed=portal.p1.test", node: 1), "node B still serves a certificate for a domain p1 no longer has")
        let listed = try self.admin("GET", "/admin/v1/nodes/p1/certificates", token: partner, port: self.nodes[1].adminPort)
        let entries = try listed.json()["certificates"] as? [[String: Any]] ?? []
        XCTAssertEqual(entries.map { $0["served"] as? Bool }, [false], listed.text)
        XCTAssertTrue(try request(port: self.opsPort, "GET", "/metrics", headers: [("Connection", "close")]).text
            .contains("erp_gateway_uploaded_certificates{state=\"not-owned\"} 1"))
        XCTAssertEqual(try self.admin("DELETE", path, token: partner, port: self.nodes[1].adminPort).status, 204)

        // Neither key material nor its sealed form in any log line or answer.
        let audit = try self.admin("GET", "/admin/v1/nodes/p1/audit", token: partner, port: self.nodes[1].adminPort)
        XCTAssertTrue(audit.text.contains("put-certificate"), audit.text)
        XCTAssertTrue(audit.text.contains(fingerprint), audit.text)
        let answers = [uploaded.text, read.text, listed.text, audit.text, metrics]
        let logs = self.nodes.map(\.gateway.log)
        XCTAssertTrue(logs[0].contains("portal certificate uploaded"), logs[0])
        for text in answers + logs {
            XCTAssertFalse(text.contains(issued.keyPEM), "the key in an answer or a log line")
            XCTAssertFalse(text.contains("PRIVATE KEY"), "a key in an answer or a log line")
            XCTAssertFalse(text.contains("aes256gcm."), "a sealed key in an answer or a log line")
        }
    }

    func testAnUploadWithoutTheKeyEncryptionKeyIsRefusedClearly() throws {
        // A third node without certificateUploads: its admin API refuses uploads (409), not a 500.
        let adminPort = try freePort()
        let plain = try GatewayProcess(settings: self.adminSettings(adminPort: adminPort), files: ["tenants.yaml": Self.tree])
        defer { XCTAssertEqual(plain.stop(), 0) }
        try waitUntilAccepting(port: adminPort, process: plain.process)
        let issued = try Self.authority.issueServer(domains: ["portal.p1.test"])
        let response = try self.admin(
            "PUT", "/admin/v1/nodes/p1/certificates/portal.p1.test", token: try self.token("partner-admin", "p1"),
            body: "{\"certificate\":\(Self.quoted(issued.chainPEM)),\"key\":\(Self.quoted(issued.keyPEM))}", port: adminPort
        )
        XCTAssertEqual(response.status, 409, response.text)
        XCTAssertTrue(response.text.contains("urn:erp-gateway:problem:certificate-uploads-disabled"), response.text)
    }

    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes]), as: UTF8.self).dropFirst().dropLast().description
    }
}
