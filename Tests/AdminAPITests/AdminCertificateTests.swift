@testable import AdminAPI
import CertificateUploads
import Certificates
import Foundation
import GatewayConfig
import Hierarchy
import TestCertificateAuthority
import XCTest

/// Portal certificates through the engine, as values: who may upload for which domain, and every
/// reason a chain and key are refused — by field, without the key.
final class AdminCertificateTests: XCTestCase {
    static let authority = try! TestCertificateAuthority()
    static let at = Date(timeIntervalSince1970: TimeInterval(AdminFixture.now))
    static func issue(_ domains: [String], from: TimeInterval = -3600, until: TimeInterval = 30 * 86400) -> TestCertificateAuthority.Issued {
        try! authority.issueServer(domains: domains, validFrom: at.addingTimeInterval(from), validUntil: at.addingTimeInterval(until))
    }
    static let p1 = issue(["portal.p1.test"])
    static let unrelatedKey = try! authority.unrelatedKey().pem

    static let kekFile = CertificateTestSupport.writeKeyEncryptionKey()
    var tree: StoredTree!

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: self.kekFile)
        super.tearDown()
    }

    override func setUpWithError() throws {
        self.tree = try CertificateTestSupport.tree(keyEncryptionKeyFile: Self.kekFile)
    }

    func put(
        _ node: String, _ domain: String, as token: String, certificate: String? = p1.chainPEM, key: String? = p1.keyPEM, extra: String = "",
        tree: StoredTree? = nil
    ) -> AdminOutcome {
        var fields: [String] = []
        if let certificate { fields.append("\"certificate\":\(JSONValue.string(certificate).text)") }
        if let key { fields.append("\"key\":\(JSONValue.string(key).text)") }
        if !extra.isEmpty { fields.append(extra) }
        let request = AdminFixture.request("PUT", "/admin/v1/nodes/\(node)/certificates/\(domain)", token: token, body: "{\(fields.joined(separator: ","))}")
        return AdminEngine.handle(request, tree: tree ?? self.tree, now: AdminFixture.now)
    }

    func response(_ outcome: AdminOutcome, file: StaticString = #filePath, line: UInt = #line) -> AdminResponse? {
        guard case .respond(let response) = outcome else {
            XCTFail("expected an answer from the engine", file: file, line: line)
            return nil
        }
        return response
    }

    func change(_ outcome: AdminOutcome, file: StaticString = #filePath, line: UInt = #line) -> CertificateChange? {
        guard case .changeCertificate(let change) = outcome else {
            XCTFail("expected a certificate change, got \(outcome)", file: file, line: line)
            return nil
        }
        return change
    }

    func testEveryReasonAChainOrKeyIsRefusedIsA422NamingTheField() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let expired = Self.issue(["portal.p1.test"], from: -90 * 86400, until: -86400)
        let notYet = Self.issue(["portal.p1.test"], from: 86400, until: 90 * 86400)
        let other = Self.issue(["other.p1.test"])
        let cases: [(String, String?, String?, String, String)] = [
            ("expired", expired.chainPEM, expired.keyPEM, "certificate", "the certificate expired at"),
            ("not yet valid", notYet.chainPEM, notYet.keyPEM, "certificate", "the certificate is not valid before"),
            ("another domain", other.chainPEM, other.keyPEM, "certificate", "the certificate does not cover 'portal.p1.test' (it covers 'other.p1.test')"),
            ("another key", Self.p1.chainPEM, Self.unrelatedKey, "key", "the key does not belong to the chain's first certificate"),
            ("issuer first", Self.authority.certificatePEM + Self.p1.certificatePEM, Self.p1.keyPEM, "key", "the key does not belong"),
            ("chain out of order", Self.p1.certificatePEM + Self.p1.certificatePEM, Self.p1.keyPEM, "certificate", "certificate 1 of the chain is not issued by certificate 2"),
            ("no PEM", "not a certificate", Self.p1.keyPEM, "certificate", "no PEM certificate found"),
            ("broken PEM", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", Self.p1.keyPEM, "certificate", "certificate 1 of the chain is not a readable PEM X.509 certificate"),
            ("unreadable key", Self.p1.chainPEM, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "key", "the key is not a readable PEM private key"),
            ("no certificate", nil, Self.p1.keyPEM, "certificate", "the certificate chain is required"),
            ("no key", Self.p1.chainPEM, nil, "key", "the private key is required"),
        ]
        for (name, certificate, key, field, message) in cases {
            let response = try XCTUnwrap(self.response(self.put("p1", "portal.p1.test", as: token, certificate: certificate, key: key)), name)
            XCTAssertEqual(response.status, 422, name)
            XCTAssertEqual(response.problemType, "urn:erp-gateway:problem:invalid-certificate", name)
            let errors = response.json?["errors"]?.array ?? []
            XCTAssertEqual(errors.count, 1, "\(name): \(response.body)")
            XCTAssertEqual(errors.first?["field"], .string(field), name)
            XCTAssertEqual(errors.first?["node"], .string("acme/p1"), name)
            XCTAssertTrue(errors.first?["message"]?.string?.contains(message) ?? false, "\(name): \(response.body)")
            for secret in [Self.p1.keyPEM, Self.unrelatedKey, expired.keyPEM, notYet.keyPEM, other.keyPEM, "PRIVATE KEY"] {
                XCTAssertFalse(response.body.contains(secret), "\(name): the key is echoed")
            }
        }
        let unknown = try XCTUnwrap(self.response(self.put("p1", "portal.p1.test", as: token, extra: "\"password\":\"x\"")))
        XCTAssertEqual(unknown.status, 422)
        XCTAssertEqual(unknown.json?["errors"]?.array?.first?["field"], .string("password"))
        let notJSON = AdminEngine.handle(
            AdminFixture.request("PUT", "/admin/v1/nodes/p1/certificates/portal.p1.test", token: token, body: Self.p1.keyPEM), tree: self.tree, now: AdminFixture.now
        )
        XCTAssertEqual(self.response(notJSON)?.problemType, "urn:erp-gateway:problem:malformed-body")
        XCTAssertFalse(self.response(notJSON)?.body.contains("PRIVATE KEY") ?? true)
    }

    func testAnAdminUploadsForItsOwnNodesPortalDomainsAndThoseBelowIt() throws {
        let customer = Self.issue(["erp.c1.test"])
        let allowed: [(String, String, String, String?, TestCertificateAuthority.Issued)] = [
            ("partner-admin", "p1", "p1", "portal.p1.test", Self.p1),
            ("oem-admin", "acme", "p1", "portal.p1.test", Self.p1),
            ("platform-admin", "-", "p1", "portal.p1.test", Self.p1),
            ("customer-admin", "c1", "c1", "erp.c1.test", customer),
            ("partner-admin", "p1", "c1", "erp.c1.test", customer),
        ]
        for (role, scope, node, domain, issued) in allowed {
            let token = try AdminFixture.token(role, node: scope == "-" ? nil : scope)
            let change = self.change(self.put(node, domain!, as: token, certificate: issued.chainPEM, key: issued.keyPEM))
            XCTAssertEqual(change?.domain, domain, "\(role) \(node)")
            XCTAssertEqual(change?.node, node)
        }
        // A domain is judged in lowercase, as portal domains are written.
        XCTAssertEqual(self.change(self.put("p1", "Portal.P1.test", as: try AdminFixture.token("partner-admin", node: "p1")))?.domain, "portal.p1.test")

        // A sibling's node is unknown to the caller, its domain is not the caller's node's own.
        let p2 = Self.issue(["portal.p2.test"])
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let hidden = self.response(self.put("p2", "portal.p2.test", as: partner, certificate: p2.chainPEM, key: p2.keyPEM))
        XCTAssertEqual(hidden?.status, 404)
        XCTAssertEqual(hidden?.problemType, "urn:erp-gateway:problem:node-not-found")
        for (node, domain, issued) in [("p1", "portal.p2.test", p2), ("p1", "erp.acme.test", Self.issue(["erp.acme.test"])), ("c1", "portal.p1.test", Self.p1)] {
            let refused = try XCTUnwrap(self.response(self.put(node, domain, as: partner, certificate: issued.chainPEM, key: issued.keyPEM)), domain)
            XCTAssertEqual(refused.status, 422, domain)
            XCTAssertEqual(refused.json?["errors"]?.array?.map { $0["field"] }, [.string("domain")], refused.body)
            XCTAssertTrue(refused.body.contains("'\(domain)' is not a portal domain of acme/p1"), refused.body)
        }
        // A customer's admin: its own domains only; its partner is unknown to it.
        let customerAdmin = try AdminFixture.token("customer-admin", node: "c1")
        XCTAssertEqual(self.response(self.put("p1", "portal.p1.test", as: customerAdmin))?.status, 404)
        XCTAssertEqual(self.response(self.put("c1", "portal.p1.test", as: customerAdmin))?.status, 422)
        // Another OEM's admin sees none of it.
        XCTAssertEqual(self.response(self.put("p1", "portal.p1.test", as: try AdminFixture.token("oem-admin", node: "globex")))?.status, 404)
        // Reads: any admin who sees the node; deletes like uploads.
        for target in ["/admin/v1/nodes/p1/certificates", "/admin/v1/nodes/p1/certificates/portal.p1.test"] {
            guard case .readCertificates = AdminEngine.handle(AdminFixture.request("GET", target, token: partner), tree: self.tree, now: AdminFixture.now) else {
                return XCTFail(target)
            }
            XCTAssertEqual(AdminFixture.respond(AdminFixture.request("GET", target, token: customerAdmin), tree: self.tree)?.status, 404)
        }
        XCTAssertNotNil(self.change(AdminEngine.handle(
            AdminFixture.request("DELETE", "/admin/v1/nodes/p1/certificates/portal.p1.test", token: partner), tree: self.tree, now: AdminFixture.now
        )))
    }

    func testWithoutAKeyEncryptionKeyUploadsAreRefusedAndDeletesStillWork() throws {
        let off = try AdminFixture.tree(text: CertificateTestSupport.treeYAML)
        XCTAssertNil(off.configuration.settings.certificateUploads)
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let refused = try XCTUnwrap(self.response(self.put("p1", "portal.p1.test", as: token, tree: off)))
        XCTAssertEqual(refused.status, 409)
        XCTAssertEqual(refused.problemType, "urn:erp-gateway:problem:certificate-uploads-disabled")
        XCTAssertNotNil(self.change(AdminEngine.handle(
            AdminFixture.request("DELETE", "/admin/v1/nodes/p1/certificates/portal.p1.test", token: token), tree: off, now: AdminFixture.now
        )))
    }

    func testTheSameChainAgainChangesNothingUnlessItsKeyWasSealedUnderAnotherKeyEncryptionKey() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let change = try XCTUnwrap(self.change(self.put("p1", "portal.p1.test", as: token)))
        guard case .put(_, _, let summary, let kek) = change.kind else { return XCTFail() }
        func stored(sealedWith key: KeyEncryptionKey) -> StoredCertificate {
            StoredCertificate.sealing(
                keyPEM: Self.p1.keyPEM, with: key, domain: "portal.p1.test", node: "p1", chainPEM: Self.p1.chainPEM, summary: summary,
                uploadedAt: AdminFixture.now - 100, uploadedBy: "jane", version: 2
            )
        }
        guard case .respond(let unchanged) = change.judge(.init(version: 2, record: stored(sealedWith: kek))) else { return XCTFail("expected no write") }
        XCTAssertEqual(unchanged.status, 200)
        XCTAssertEqual(unchanged.json?["version"], .integer(2))
        // After a rotation the same upload seals the key again, under the current key.
        let previous = try KeyEncryptionKey(fileContents: Array(repeating: 7, count: 32))
        guard case .write(_, let record, _, let replaced) = change.judge(.init(version: 2, record: stored(sealedWith: previous))) else {
            return XCTFail("expected a write")
        }
        XCTAssertEqual(replaced.status, 200)
        XCTAssertEqual(try record?.openKey(with: kek), Self.p1.keyPEM)
    }

    func testTheRoutes() {
        XCTAssertEqual(AdminRoute.match(method: "GET", path: "/admin/v1/nodes/p1/certificates"), .success(.listCertificates("p1")))
        XCTAssertEqual(AdminRoute.match(method: "PUT", path: "/admin/v1/nodes/p1/certificates/A.test"), .success(.putCertificate("p1", domain: "a.test")))
        XCTAssertEqual(AdminRoute.match(method: "POST", path: "/admin/v1/nodes/p1/certificates"), .failure(.methodNotAllowed(allowed: ["GET"])))
        XCTAssertEqual(AdminRoute.match(method: "POST", path: "/admin/v1/nodes/p1/certificates/a.test"), .failure(.methodNotAllowed(allowed: ["DELETE", "GET", "PUT"])))
        for path in ["/admin/v1/nodes/p1/certificates/", "/admin/v1/nodes/p1/issuers/a.test", "/admin/v1/nodes/p1/certificates/a.test/x"] {
            XCTAssertEqual(AdminRoute.match(method: "GET", path: path), .failure(.notFound), path)
        }
    }

    func testAStaleRecordOfTheDomainsFormerOwnerIsReplacedWithoutShowingIt() throws {
        // The domain moved from p1 to c1; p1's record is still stored.
        let moved = try CertificateTestSupport.tree(
            keyEncryptionKeyFile: Self.kekFile,
            text: CertificateTestSupport.treeYAML.replacingOccurrences(of: "portalDomains: [portal.p1.test]", with: "portalDomains: []")
                .replacingOccurrences(of: "[erp.c1.test]", with: "[erp.c1.test, portal.p1.test]")
        )
        let kek = try XCTUnwrap(moved.configuration.settings.certificateUploads?.keyEncryptionKey)
        let summary = try CertificateInspection.inspect(chainPEM: Self.p1.chainPEM, keyPEM: Self.p1.keyPEM, now: AdminFixture.now)
        let former = StoredCertificate.sealing(
            keyPEM: Self.p1.keyPEM, with: kek, domain: "portal.p1.test", node: "p1", chainPEM: Self.p1.chainPEM, summary: summary,
            uploadedAt: AdminFixture.now - 100, uploadedBy: "former", version: 3
        )
        // p1's list shows it, as no longer served.
        let read = CertificateRead(node: "p1", path: try NodePath(parsing: "acme/p1"), domain: nil, tree: moved.snapshot!, now: AdminFixture.now, requestID: "r")
        let listed = read.response([former]).json?["certificates"]?.array
        XCTAssertEqual(listed?.count, 1)
        XCTAssertEqual(listed?.first?["served"], .bool(false))
        XCTAssertEqual(listed?.first?["expiresInDays"], .integer(30))
        XCTAssertEqual(listed?.first?["notAfter"]?.string, "2027-02-14T08:00:00Z")

        // The new owner's upload replaces it: a creation, the former record in no answer or audit.
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let change = try XCTUnwrap(self.change(self.put("c1", "portal.p1.test", as: token, tree: moved)))
        guard case .write(let base, let record, let audit, let response) = change.judge(.init(version: 3, record: former)) else {
            return XCTFail("expected a write")
        }
        XCTAssertEqual(base, 3)
        XCTAssertEqual(record?.node, "c1")
        XCTAssertEqual(record?.version, 4)
        XCTAssertEqual(response.status, 201)
        XCTAssertEqual(audit.changes.first?.before, nil)
        XCTAssertFalse(audit.json.text.contains("former"))
        // If-Match names a record the caller's node has: none here.
        let conditional = AdminEngine.handle(
            AdminFixture.request("PUT", "/admin/v1/nodes/c1/certificates/portal.p1.test", token: token, ifMatch: "*", body: CertificateTestSupport.body(Self.p1)),
            tree: moved, now: AdminFixture.now
        )
        guard case .respond(let stale) = try XCTUnwrap(self.change(conditional)).judge(.init(version: 3, record: former)) else { return XCTFail() }
        XCTAssertEqual(stale.status, 412)
    }
}

/// The fixture's settings with a key-encryption key, and a tree where a customer has a portal
/// domain of its own.
enum CertificateTestSupport {
    static let treeYAML = AdminFixture.treeYAML
        .replacingOccurrences(of: "- { id: c1, kind: customer, parent: p1, package: basic }", with: "- { id: c1, kind: customer, parent: p1, package: basic, portalDomains: [erp.c1.test] }")
        .replacingOccurrences(of: "- { id: p2, kind: partner, parent: acme }", with: "- { id: p2, kind: partner, parent: acme, portalDomains: [portal.p2.test] }")

    /// A new key file of 32 random bytes (base64), as `openssl rand -base64 32` makes one.
    static func writeKeyEncryptionKey() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("erp-admin-kek-\(UUID().uuidString)").path
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max) }
        try! Data(bytes).base64EncodedString().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func settingsYAML(keyEncryptionKeyFile: String) -> String {
        AdminFixture.settingsYAML + "certificateUploads: { keyEncryptionKeyFile: \(keyEncryptionKeyFile) }\n"
    }

    static func tree(keyEncryptionKeyFile: String, text: String = treeYAML, revision: Int64 = 1) throws -> StoredTree {
        let settings = try SettingsLoader.parse(self.settingsYAML(keyEncryptionKeyFile: keyEncryptionKeyFile), source: "gateway.yaml", baseDirectory: "/tmp")
        return try StoredTree.read(text: text, revision: revision, settings: settings, settingsPath: "/tmp/gateway.yaml")
    }

    static func body(_ issued: TestCertificateAuthority.Issued) -> String {
        JSONValue.object(["certificate": .string(issued.chainPEM), "key": .string(issued.keyPEM)]).text
    }
}
