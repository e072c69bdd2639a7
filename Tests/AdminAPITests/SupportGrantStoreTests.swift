import Foundation
import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient
import TokenAuth
import XCTest

@testable import AdminAPI

/// Support grants through the admin service on a real redis-server, on a clock the test moves:
/// a request nobody answers expires, and grants ended longer ago than they are kept leave the
/// list and the store.
final class SupportGrantStoreTests: RedisServerTestCase {
    let store = AdminStore(keyPrefix: "erp-grant-test")
    let clock = NIOLockedValueBox(AdminFixture.now)
    var service: AdminService!

    private static var keyFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/examples/keys/support-1.private.pem").path
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        let settingsText = AdminFixture.settingsYAML + """
            supportAccess:
              signingKey: \(Self.keyFile)
              algorithm: ES256
              answerWithin: 1h
              keepEnded: 1h

            """
        let settingsPath = FileManager.default.temporaryDirectory.appendingPathComponent("support-grant-store-\(getpid()).yaml").path
        try settingsText.write(toFile: settingsPath, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: settingsPath) }
        let settings = try SettingsLoader.parse(settingsText, source: "gateway.yaml", baseDirectory: "/tmp")
        let seed = try StoredTree.read(text: AdminFixture.treeYAML, revision: 1, settings: settings, settingsPath: settingsPath)
        let latest = LatestTree(seed, onNewer: { _ in })
        let logger = Logger(label: "test")
        let feed = TreeFeed(
            client: self.client, url: RedisURL(host: "127.0.0.1", port: self.server.port), store: self.store, latest: latest, loop: self.loop,
            logger: logger, compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        let clock = self.clock
        self.service = AdminService(
            latest: latest, feed: feed, store: self.store, client: self.client, revoker: { _, loop, _ in loop.makeSucceededFuture(0) },
            usage: .init(redis: self.client, prefix: "erp-grant-test"), logger: logger, clock: { clock.withLockedValue { $0 } }
        )
    }

    /// A request as `subject` in `role` at the test's clock (the token minted then).
    private func send(_ method: String, _ target: String, _ role: String, node: String?, subject: String, body: String? = nil) throws -> AdminResponse {
        let now = self.clock.withLockedValue { $0 }
        var claims: [String: ClaimValue] = [
            "iss": "https://admin.platform.test", "sub": .string(subject), "aud": "erp-admin", "exp": .integer(now + 300), "iat": .integer(now),
            "role": .string(role),
        ]
        if let node { claims["node"] = .string(node) }
        let token = try TokenMinter.mint(claims: claims, algorithm: .HS256, kid: "admin-1", secret: AdminFixture.secret)
        return try self.service.handle(AdminFixture.request(method, target, token: token, body: body), on: self.loop).wait()
    }

    private func ask() throws -> String {
        let body = #"{"reason":"invoice totals wrong","ticket":"SUP-42","duration":"30m","scope":"read-only"}"#
        let asked = try self.send("POST", "/admin/v1/nodes/c1/support-grants", "support", node: "acme", subject: "eng-1", body: body)
        XCTAssertEqual(asked.status, 201, asked.body)
        return try XCTUnwrap(asked.json?["id"]?.string)
    }

    private func statuses() throws -> [String: String] {
        let listed = try self.send("GET", "/admin/v1/nodes/c1/support-grants", "customer-admin", node: "c1", subject: "admin-c1")
        XCTAssertEqual(listed.status, 200, listed.body)
        var statuses: [String: String] = [:]
        for grant in listed.json?["grants"]?.array ?? [] { statuses[grant["id"]?.string ?? "?"] = grant["status"]?.string }
        return statuses
    }

    func testAnUnansweredRequestExpiresAndEndedGrantsLeaveTheListAndTheStore() throws {
        let unanswered = try self.ask()
        let refused = try self.ask()
        self.clock.withLockedValue { $0 += 10 }
        XCTAssertEqual(try self.send("POST", "/admin/v1/nodes/c1/support-grants/\(refused)/refuse", "customer-admin", node: "c1", subject: "admin-c1").status, 200)

        // An hour after the request, nobody having answered: too late to approve.
        self.clock.withLockedValue { $0 = AdminFixture.now + 3600 }
        let late = try self.send("POST", "/admin/v1/nodes/c1/support-grants/\(unanswered)/approve", "customer-admin", node: "c1", subject: "admin-c1")
        XCTAssertEqual(late.status, 409, late.body)
        XCTAssertEqual(late.problemType?.hasSuffix("support-grant-state"), true, late.body)
        XCTAssertTrue(late.body.contains("the grant is expired"), late.body)
        XCTAssertEqual(try self.statuses(), [unanswered: "expired", refused: "refused"])

        // An hour after each ended, a list no longer shows them, and the store no longer has them.
        let grants = SupportGrantStore(admin: self.store)
        XCTAssertEqual(try grants.all(customer: "c1", client: self.client, on: self.loop).wait().count, 2)
        self.clock.withLockedValue { $0 = AdminFixture.now + 2 * 3600 }
        XCTAssertEqual(try self.statuses(), [:])
        XCTAssertEqual(try grants.all(customer: "c1", client: self.client, on: self.loop).wait(), [])
        // A new request is kept as ever.
        let next = try self.ask()
        XCTAssertEqual(try self.statuses(), [next: "requested"])
    }
}
