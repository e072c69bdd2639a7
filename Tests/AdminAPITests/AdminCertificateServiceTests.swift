@testable import AdminAPI
import CertificateUploads
import Certificates
import Foundation
import GatewayConfig
import LogCapture
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import TestCertificateAuthority
import XCTest

/// Portal certificates through the service on a real redis-server: upload, read, replace under
/// `If-Match`, dry runs, delete, the audit log — and the key, as uploaded or as sealed, in no
/// answer, no audit record and no log line.
final class AdminCertificateServiceTests: XCTestCase {
    static let kekFile = CertificateTestSupport.writeKeyEncryptionKey()
    var server: RedisServer!
    var group: MultiThreadedEventLoopGroup!
    var client: RedisClient!
    var service: AdminService!
    var settingsPath: String!
    let log = CapturedLog()
    let prefix = "erp-certificate-service-test"
    /// Every answer the service gave, to search for key material.
    var answers: [String] = []

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: self.kekFile)
        super.tearDown()
    }

    override func setUpWithError() throws {
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.client = RedisClient(url: RedisURL(host: "127.0.0.1", port: self.server.port), group: self.group)
        self.settingsPath = FileManager.default.temporaryDirectory.appendingPathComponent("admin-certificates-\(UUID().uuidString).yaml").path
        try CertificateTestSupport.settingsYAML(keyEncryptionKeyFile: Self.kekFile).write(toFile: self.settingsPath, atomically: true, encoding: .utf8)
        let latest = LatestTree(try CertificateTestSupport.tree(keyEncryptionKeyFile: Self.kekFile, revision: 0), onNewer: { _ in })
        let store = AdminStore(keyPrefix: self.prefix)
        let settingsPath = self.settingsPath!
        let feed = TreeFeed(
            client: self.client, url: RedisURL(host: "127.0.0.1", port: self.server.port), store: store, latest: latest, loop: self.group.next(),
            logger: self.log.logger(), compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        XCTAssertEqual(try feed.synchronize(reason: "test").wait(), 1)
        self.service = AdminService(
            latest: latest, feed: feed, store: store, client: self.client, revoker: { _, loop, _ in loop.makeSucceededFuture(0) },
            usage: .init(redis: self.client, prefix: self.prefix), logger: self.log.logger(), clock: { AdminFixture.now }
        )
    }

    override func tearDownWithError() throws {
        try self.client.shutdown().wait()
        try self.group.syncShutdownGracefully()
        self.server.stop()
        try? FileManager.default.removeItem(atPath: self.settingsPath)
    }

    func send(
        _ method: String, _ target: String, as token: String, body: String? = nil, headers: [(String, String)] = [], file: StaticString = #filePath, line: UInt = #line
    ) throws -> AdminResponse {
        var request = AdminFixture.request(method, target, token: token, body: body)
        request.headers += headers.map { (name: $0.0, value: $0.1) }
        let response = try self.service.handle(request, on: self.group.next()).wait()
        self.answers.append(response.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n") + "\n" + response.body)
        return response
    }

    func testUploadReadReplaceAndDeleteWithTheKeyNeverShown() throws {
        let first = AdminCertificateTests.p1
        let renewed = AdminCertificateTests.issue(["portal.p1.test", "www.p1.test"], until: 90 * 86400)
        let partner = try AdminFixture.token("partner-admin", node: "p1", subject: "jane@p1.test")
        let path = "/admin/v1/nodes/p1/certificates/portal.p1.test"

        // A dry run stores nothing.
        let dry = try self.send("PUT", path + "?dryRun=true", as: partner, body: CertificateTestSupport.body(first))
        XCTAssertEqual(dry.status, 200, dry.body)
        XCTAssertEqual(dry.json?["dryRun"], .bool(true))
        XCTAssertEqual(dry.json?["node"]?["fingerprint"], .string(try CertificateInspection.summary(chainPEM: first.chainPEM).fingerprint))
        XCTAssertEqual(dry.json?["changes"]?.array?.first?["field"], .string("certificates.portal.p1.test"))
        XCTAssertEqual(try self.send("GET", path, as: partner).status, 404)

        let created = try self.send("PUT", path, as: partner, body: CertificateTestSupport.body(first))
        XCTAssertEqual(created.status, 201, created.body)
        let etag = try XCTUnwrap(created.header("etag"))
        let body = try XCTUnwrap(created.json)
        XCTAssertEqual(body["domain"], .string("portal.p1.test"))
        XCTAssertEqual(body["node"], .string("acme/p1"))
        XCTAssertEqual(body["names"], .strings(["portal.p1.test"]))
        XCTAssertEqual(body["uploadedBy"], .string("jane@p1.test"))
        XCTAssertEqual(body["uploadedAt"], .string("2027-01-15T08:00:00Z"))
        XCTAssertEqual(body["expiresInDays"], .integer(30))
        XCTAssertEqual(body["served"], .bool(true))
        XCTAssertEqual(body["version"], .integer(1))
        for field in ["subject", "issuer", "notBefore", "notAfter", "fingerprint"] { XCTAssertNotNil(body[field]?.string, field) }

        // Read back, by the OEM's admin too; the list holds it.
        let read = try self.send("GET", path, as: try AdminFixture.token("oem-admin", node: "acme"))
        XCTAssertEqual(read.status, 200)
        XCTAssertEqual(read.json, body)
        XCTAssertEqual(read.header("etag"), etag)
        let list = try self.send("GET", "/admin/v1/nodes/p1/certificates", as: partner)
        XCTAssertEqual(list.json?["certificates"], .array([body]))
        XCTAssertEqual(try self.send("GET", "/admin/v1/nodes/c1/certificates", as: partner).json?["certificates"], .array([]))
        XCTAssertEqual(try self.send("GET", "/admin/v1/nodes/c1/certificates/portal.p1.test", as: partner).status, 404, "another node's domain")

        // Replacing: a stale ETag or If-None-Match: * is refused, the current ETag is taken.
        let renewal = CertificateTestSupport.body(renewed)
        XCTAssertEqual(try self.send("PUT", path, as: partner, body: renewal, headers: [("if-match", "\"0000000000000000\"")]).status, 412)
        XCTAssertEqual(try self.send("PUT", path, as: partner, body: renewal, headers: [("if-none-match", "*")]).status, 412)
        let dryRenewal = try self.send("PUT", path + "?dryRun=true", as: partner, body: renewal, headers: [("if-match", etag)])
        XCTAssertEqual(dryRenewal.status, 200)
        XCTAssertEqual(dryRenewal.json?["changes"]?.array?.first?["before"]?["names"], .strings(["portal.p1.test"]))
        XCTAssertEqual(dryRenewal.json?["changes"]?.array?.first?["after"]?["names"], .strings(["portal.p1.test", "www.p1.test"]))
        XCTAssertEqual(try self.send("GET", path, as: partner).json?["version"], .integer(1), "the dry run stored nothing")
        let replaced = try self.send("PUT", path, as: partner, body: renewal, headers: [("if-match", etag)])
        XCTAssertEqual(replaced.status, 200, replaced.body)
        XCTAssertEqual(replaced.json?["version"], .integer(2))
        XCTAssertNotEqual(replaced.header("etag"), etag)
        // The same chain again changes nothing.
        let again = try self.send("PUT", path, as: partner, body: renewal)
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(again.json?["version"], .integer(2))
        XCTAssertEqual(again.header("etag"), replaced.header("etag"))

        // What Redis holds: the chain, and the key sealed to its domain and node only.
        let stored = try XCTUnwrap(try self.client.send(on: self.group.next(), ["HGET", "\(self.prefix):{admin}:certificates", "portal.p1.test"]).wait().string)
        let record = try XCTUnwrap(StoredCertificate(storedText: stored))
        XCTAssertFalse(stored.contains("PRIVATE KEY"))
        let kek = try XCTUnwrap(try CertificateTestSupport.tree(keyEncryptionKeyFile: Self.kekFile).configuration.settings.certificateUploads?.keyEncryptionKey)
        XCTAssertEqual(try record.openKey(with: kek), renewed.keyPEM)
        XCTAssertThrowsError(try kek.open(record.sealedKey, context: StoredCertificate.keyContext(domain: "portal.p2.test", node: "p1")))
        XCTAssertThrowsError(try kek.open(record.sealedKey, context: StoredCertificate.keyContext(domain: "portal.p1.test", node: "p2")))

        // Deleting: a dry run keeps it, then it is gone.
        XCTAssertEqual(try self.send("DELETE", path + "?dryRun=true", as: partner).status, 200)
        XCTAssertEqual(try self.send("GET", path, as: partner).status, 200)
        XCTAssertEqual(try self.send("DELETE", path, as: partner, headers: [("if-match", "\"0000000000000000\"")]).status, 412)
        XCTAssertEqual(try self.send("DELETE", path, as: partner).status, 204)
        let gone = try self.send("GET", path, as: partner)
        XCTAssertEqual(gone.status, 404)
        XCTAssertEqual(gone.problemType, "urn:erp-gateway:problem:certificate-not-found")
        XCTAssertEqual(try self.send("DELETE", path, as: partner).status, 404)

        // The audit log: upload, replacement, deletion — fingerprints, names, expiry.
        let audit = try self.send("GET", "/admin/v1/nodes/p1/audit", as: partner)
        let entries = try XCTUnwrap(audit.json?["entries"]?.array)
        XCTAssertEqual(entries.compactMap { $0["action"]?.string }, ["delete-certificate", "put-certificate", "put-certificate"])
        XCTAssertEqual(entries.last?["changes"]?.array?.first?["after"]?["fingerprint"], body["fingerprint"])
        XCTAssertEqual(entries.first?["changes"]?.array?.first?["after"], .null)
        XCTAssertEqual(entries.first?["actor"], .string("jane@p1.test"))

        // Not a trace of either key, as uploaded or as sealed, anywhere.
        let everything = self.answers.joined(separator: "\n") + self.log.text
        XCTAssertTrue(self.log.text.contains("portal certificate uploaded"), self.log.text)
        for secret in [first.keyPEM, renewed.keyPEM, record.sealedKey, String(record.sealedKey.split(separator: ".").last!), "PRIVATE KEY"] {
            XCTAssertFalse(everything.contains(secret), "key material in an answer or a log line")
        }
    }
}
