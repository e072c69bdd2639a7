import Foundation
import TestCertificateAuthority
import XCTest

/// A partner's uploaded portal certificate presented by SNI on every node: two real gateways
/// with TLS listeners on one real redis-server; an upload through node A's admin API is what
/// node B's listener presents for that domain within a second, without a restart, while a
/// connection B had already opened for the domain keeps serving.
final class UploadedCertificateServingTests: AdminTestCase {
    static let authority = try! TestCertificateAuthority()
    static let operatorCertificate = try! authority.issueServer(domains: ["gateway.test"])
    let keyEncryptionKey = Data((0..<32).map { _ in UInt8.random(in: .min ... .max) }).base64EncodedString() + "\n"

    override func setUp() async throws {
        try await super.setUp()
        for adminPort in [self.adminPort, try freePort()] {
            let gateway = try self.addNode(
                adminPort: adminPort, settings: self.adminSettings(
                    adminPort: adminPort, ["listener": ["tls": "{ certificate: tls/gateway.pem, key: tls/gateway.key }"]],
                    extra: "certificateUploads:\n  keyEncryptionKeyFile: certificate-kek\n"
                ),
                files: [
                    "tenants.yaml": Self.tree, "certificate-kek": self.keyEncryptionKey,
                    "tls/gateway.pem": Self.operatorCertificate.chainPEM, "tls/gateway.key": Self.operatorCertificate.keyPEM,
                ],
                arguments: ["--watch-interval-ms", "0"]
            )
            XCTAssertTrue(gateway.waitForLog("uploaded TLS certificates installed"), gateway.log)
        }
    }

    override func tearDown() async throws {
        self.stopNodes()
        try await super.tearDown()
    }

    func testAnUploadIsPresentedByEveryNodeWithinASecondWithoutDroppingOpenConnections() throws {
        let nodeB = self.nodes[1].gateway
        // Before the upload, the portal domain gets the operator's default certificate.
        let open = try OpenSSLClient(port: nodeB.port, serverName: "portal.p1.test")
        open.send("GET /before HTTP/1.1\r\nHost: portal.p1.test\r\n\r\n")
        XCTAssertTrue(open.waitFor("HTTP/1.1 "), open.text)
        XCTAssertEqual(OpenSSLClient.servedCertificate(open.text), TLSListenerTests.pemBlock(Self.operatorCertificate))

        let issued = try Self.authority.issueServer(domains: ["portal.p1.test"])
        let body = "{\"certificate\":\(CertificateUploadNodesTests.quoted(issued.chainPEM)),\"key\":\(CertificateUploadNodesTests.quoted(issued.keyPEM))}"
        let uploaded = try self.admin(
            "PUT", "/admin/v1/nodes/p1/certificates/portal.p1.test", token: try self.token("partner-admin", "p1"), body: body,
            port: self.nodes[0].adminPort
        )
        XCTAssertEqual(uploaded.status, 201, uploaded.text)
        let written = Date()

        // Node B presents it to new handshakes for that name, and only for that name.
        var seconds: Double?
        while Date().timeIntervalSince(written) < 5 {
            if OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: nodeB.port, serverName: "portal.p1.test")) == TLSListenerTests.pemBlock(issued) {
                seconds = Date().timeIntervalSince(written)
                break
            }
            usleep(20_000)
        }
        let took = try XCTUnwrap(seconds, "node B never presented the uploaded certificate")
        print("an upload on node A was presented by node B's listener \(String(format: "%.3f", took)) s after its 201")
        XCTAssertLessThan(took, 1.0, "every node presents an upload within a second")
        XCTAssertEqual(
            OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: nodeB.port, serverName: "erp.acme.test")), TLSListenerTests.pemBlock(Self.operatorCertificate)
        )
        // Node A too (it wrote it).
        XCTAssertEqual(
            OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: self.nodes[0].gateway.port, serverName: "portal.p1.test")),
            TLSListenerTests.pemBlock(issued)
        )
        // The connection opened before the upload was not dropped: it keeps its certificate and serves on.
        open.send("GET /after HTTP/1.1\r\nHost: portal.p1.test\r\n\r\n")
        XCTAssertTrue(open.waitFor("HTTP/1.1 ", count: 2), "the open connection keeps serving:\n\(open.text)")
        XCTAssertTrue(open.isRunning)

        // Deleted: back to the default on node B.
        XCTAssertEqual(
            try self.admin("DELETE", "/admin/v1/nodes/p1/certificates/portal.p1.test", token: try self.token("partner-admin", "p1"), port: self.nodes[0].adminPort).status,
            204
        )
        XCTAssertTrue(try self.eventually(5) {
            OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: nodeB.port, serverName: "portal.p1.test")) == TLSListenerTests.pemBlock(Self.operatorCertificate)
        }, "node B still presents a deleted certificate")
    }
}

/// The admin API over TLS (`admin.listener.tls`): the same TLS as the data plane's listener,
/// with the admin listener's own certificate, renewed by a reload without a restart.
final class AdminListenerTLSTests: AdminTestCase {
    static let authority = try! TestCertificateAuthority()

    func testTheAdminAPIIsServedOverTLSAndItsCertificateReloads() throws {
        let first = try Self.authority.issueServer(domains: ["admin.gateway.test"])
        let gateway = try GatewayProcess(
            settings: self.adminSettings(adminPort: self.adminPort, adminListener: ", tls: { certificate: tls/admin.pem, key: tls/admin.key }"),
            files: ["tenants.yaml": Self.tree, "tls/admin.pem": first.chainPEM, "tls/admin.key": first.keyPEM],
            arguments: ["--watch-interval-ms", "0"]
        )
        defer { XCTAssertEqual(gateway.stop(), 0) }
        try waitUntilAccepting(port: self.adminPort, process: gateway.process)
        let token = try self.token("partner-admin", "p1")

        let (status, output) = try curlHTTPS(
            port: self.adminPort, host: "admin.gateway.test", path: "/admin/v1/nodes/p1", caFile: Self.authority.certificatePath,
            headers: [("Authorization", "Bearer \(token)")]
        )
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.hasPrefix("HTTP/1.1 200"), output)
        XCTAssertTrue(output.contains("\"id\":\"p1\""), output)
        XCTAssertEqual(OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: self.adminPort, serverName: "admin.gateway.test")), TLSListenerTests.pemBlock(first))
        // Plain HTTP is not spoken there.
        XCTAssertThrowsError(try self.admin("GET", "/admin/v1/nodes/p1", token: token, port: self.adminPort))

        let renewed = try Self.authority.issueServer(domains: ["admin.gateway.test"])
        try gateway.replaceFile("tls/admin.pem", with: renewed.chainPEM)
        try gateway.replaceFile("tls/admin.key", with: renewed.keyPEM)
        gateway.signal(SIGHUP)
        XCTAssertTrue(gateway.waitForLog("configuration reloaded"), gateway.log)
        XCTAssertEqual(
            OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: self.adminPort, serverName: "admin.gateway.test")), TLSListenerTests.pemBlock(renewed),
            "a reload presents the renewed certificate"
        )
    }
}
