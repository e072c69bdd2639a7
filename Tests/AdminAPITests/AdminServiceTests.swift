import AdminAPI
import GatewayConfig
import Logging
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import XCTest

/// The store's compare-and-set and the service's retry on a real redis-server: a change computed
/// on an older revision is judged again on the newer one, never written over it.
final class AdminServiceTests: RedisServerTestCase {
    let store = AdminStore(keyPrefix: "erp-service-test")

    func testTheRevisionMovesOnlyFromTheRevisionAChangeWasComputedOn() throws {
        let none = StoreRevision(number: 0, id: StoreRevision.noID)
        let seeded = try self.store.commit(text: "a", base: none, id: "first", audit: nil, deleted: nil, client: self.client, on: self.loop).wait()
        XCTAssertEqual(seeded, .committed(revision: 1))
        XCTAssertEqual(try self.store.commit(text: "b", base: none, id: "other", audit: nil, deleted: nil, client: self.client, on: self.loop).wait(), .conflict(current: 1))
        let record = AuditRecord(time: 1, actor: "a", role: .oemAdmin, node: try .init(parsing: "acme/p1"), action: .update, changes: [], requestID: "r1")
        // The right number under another id: a revision a failover lost, not the store's.
        XCTAssertEqual(
            try self.store.commit(text: "x", base: StoreRevision(number: 1, id: "lost"), id: "x", audit: ("acme", record.json.text), deleted: nil, client: self.client, on: self.loop).wait(),
            .conflict(current: 1)
        )
        let changed = try self.store.commit(
            text: "c", base: StoreRevision(number: 1, id: "first"), id: "second", audit: ("acme", record.json.text), deleted: ("c9", "{}"), client: self.client, on: self.loop
        ).wait()
        XCTAssertEqual(changed, .committed(revision: 2))
        XCTAssertEqual(
            try self.store.commit(text: "d", base: StoreRevision(number: 1, id: "first"), id: "d", audit: ("acme", record.json.text), deleted: nil, client: self.client, on: self.loop).wait(),
            .conflict(current: 2)
        )
        XCTAssertEqual(try self.store.head(client: self.client, on: self.loop).wait(), StoreRevision(number: 2, id: "second"))
        let stored = try XCTUnwrap(try self.store.load(client: self.client, on: self.loop).wait())
        XCTAssertEqual(stored.revision, 2)
        XCTAssertEqual(stored.id, "second")
        XCTAssertEqual(stored.text, "c")
        XCTAssertEqual(try self.store.audit(oem: "acme", count: 10, client: self.client, on: self.loop).wait(), [record], "one record: the refused commit wrote none")
    }

    func testAChangeThatLostTheRaceIsJudgedAgainOnTheNewerTree() throws {
        let settingsPath = FileManager.default.temporaryDirectory.appendingPathComponent("admin-service-\(getpid()).yaml").path
        try AdminFixture.settingsYAML.write(toFile: settingsPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: settingsPath) }
        let seed = try AdminFixture.tree(revision: 0)
        let latest = LatestTree(seed, onNewer: { _ in })
        let logger = Logger(label: "test")
        let feed = TreeFeed(
            client: self.client, url: RedisURL(host: "127.0.0.1", port: self.server.port), store: self.store, latest: latest, loop: self.loop,
            logger: logger, compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        XCTAssertEqual(try feed.synchronize(reason: "test").wait(), 1, "seeded")
        let service = AdminService(
            latest: latest, feed: feed, store: self.store, client: self.client, revoker: { _, loop, _ in loop.makeSucceededFuture(0) },
            usage: .init(redis: self.client, prefix: "erp-service-test"), logger: logger, clock: { AdminFixture.now }
        )
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let p1ETag = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p1", token: token), tree: latest.current)?.header("etag"))

        // Another node changes p2 first: the store is at 2 while this process still has 1.
        let elsewhere = try XCTUnwrap(AdminFixture.commit(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p2", token: token, ifMatch: "*", body: #"{"branding":{"displayName":"P2"}}"#), tree: latest.current
        ))
        XCTAssertEqual(
            try self.store.commit(text: elsewhere.next.text, base: latest.current.storeRevision, id: "elsewhere", audit: nil, deleted: nil, client: self.client, on: self.loop).wait(),
            .committed(revision: 2)
        )
        XCTAssertEqual(latest.current.revision, 1)

        let response = try service.handle(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: p1ETag, body: #"{"branding":{"displayName":"P1"}}"#), on: self.loop
        ).wait()
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(latest.current.revision, 3)
        let snapshot = try XCTUnwrap(latest.current.snapshot)
        XCTAssertEqual(snapshot.policy(try .init("p1"))?.branding.values[.displayName], "P1")
        XCTAssertEqual(snapshot.policy(try .init("p2"))?.branding.values[.displayName], "P2", "the other node's change is kept")
        XCTAssertEqual(try self.store.load(client: self.client, on: self.loop).wait()?.revision, 3)
    }
}
