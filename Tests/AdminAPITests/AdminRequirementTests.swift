import AdminAPI
import Foundation
import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import XCTest

/// Module dependencies through the admin API: a write that would leave any node with a feature
/// but without a feature it requires is refused with 422, naming the node, the field and the
/// missing feature — in a dry run exactly as in a real one — and explain shows the chain.
final class AdminRequirementTests: XCTestCase {
    /// The fixture's tree with `payroll` requiring `ledger`, and a package without the ledger.
    static let treeYAML = AdminFixture.treeYAML
        .replacingOccurrences(of: "features: [ledger, payroll, crm]", with: "features: [ledger, { name: payroll, requires: [ledger] }, crm]")
        .replacingOccurrences(of: "    basic: [ledger]\n", with: "    basic: [ledger]\n    crmonly: [crm]\n")

    var tree: StoredTree!

    override func setUpWithError() throws {
        self.tree = try AdminFixture.tree(text: Self.treeYAML)
        XCTAssertEqual(self.tree.document.tree.catalog.requires, ["payroll": ["ledger"]], "the fixture declares the requirement")
    }

    func etag(_ id: String) throws -> String {
        let response = AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/\(id)", token: try AdminFixture.token("platform-admin", node: nil)), tree: self.tree)
        return try XCTUnwrap(response?.header("etag"))
    }

    func patch(_ id: String, _ body: String, as token: String, query: String = "") throws -> AdminResponse? {
        AdminFixture.respond(AdminFixture.request("PATCH", "/admin/v1/nodes/\(id)\(query)", token: token, ifMatch: try self.etag(id), body: body), tree: self.tree)
    }

    func errors(_ response: AdminResponse?) -> [[String: String]] {
        (response?.json?["errors"]?.array ?? []).map { error in
            ["node": error["node"]?.string ?? "", "field": error["field"]?.string ?? "", "message": error["message"]?.string ?? ""]
        }
    }

    func testAnAddOnWithoutItsRequirementIsRefusedNamingTheMissingFeature() throws {
        let token = try AdminFixture.token("partner-admin", node: "p2")
        let body = #"{"package":"crmonly","addOns":["payroll"]}"#
        let refused = try self.patch("c3", body, as: token)

        XCTAssertEqual(refused?.status, 422, refused?.body ?? "")
        XCTAssertEqual(refused?.header("content-type"), "application/problem+json")
        XCTAssertEqual(refused?.problemType, "urn:erp-gateway:problem:invalid-change")
        XCTAssertEqual(self.errors(refused), [[
            "node": "acme/p2/c3", "field": "addOns",
            "message": "add-on 'payroll' requires 'ledger', which neither the package 'crmonly' nor the add-ons include",
        ]])

        let dryRun = try self.patch("c3", body, as: token, query: "?dryRun=true")
        XCTAssertEqual(dryRun?.status, 422)
        XCTAssertEqual(self.errors(dryRun), self.errors(refused), "a dry run reports what the change would")

        let valid = try self.patch("c3", #"{"package":"crmonly","addOns":["ledger","payroll"]}"#, as: token, query: "?dryRun=true")
        XCTAssertEqual(valid?.status, 200, valid?.body ?? "")
        XCTAssertEqual(valid?.json?["dryRun"], .bool(true))
    }

    func testAPartnerThatWouldTakeARequirementFromItsCustomersIsRefusedNamingBoth() throws {
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let refused = try self.patch("p2", #"{"features":["payroll"]}"#, as: token, query: "?dryRun=true")

        XCTAssertEqual(refused?.status, 422, refused?.body ?? "")
        XCTAssertEqual(self.errors(refused), [
            ["node": "acme/p2", "field": "features", "message": "'payroll' requires 'ledger', which the features offered here do not include"],
            ["node": "acme/p2/c3", "field": "package", "message": "'payroll' requires 'ledger', which acme/p2 does not offer"],
        ])
        // Taking both away is plain narrowing.
        let narrowed = try self.patch("p2", #"{"features":["ledger"]}"#, as: token, query: "?dryRun=true")
        XCTAssertEqual(narrowed?.status, 200, narrowed?.body ?? "")
    }

    func testAnAppliedSubtreeIsCheckedLikeAnyChange() throws {
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let exported = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p2/subtree", token: token), tree: self.tree))
        XCTAssertTrue(exported.body.contains("requires: [ledger]"), "the export carries the catalog's requirements:\n\(exported.body)")
        let edited = exported.body.replacingOccurrences(of: "package: full", with: "package: crmonly\n  addOns: [payroll]")
        XCTAssertNotEqual(edited, exported.body)
        for query in ["", "?dryRun=true"] {
            let outcome = AdminEngine.handle(
                AdminFixture.request("PUT", "/admin/v1/nodes/p2/subtree\(query)", token: token, ifMatch: exported.header("etag"), body: edited),
                tree: self.tree, now: AdminFixture.now
            )
            guard case .respond(let refused) = outcome else { return XCTFail("expected a refusal\(query)") }
            XCTAssertEqual(refused.status, 422, refused.body)
            XCTAssertEqual(self.errors(refused).map { $0["field"] }, ["addOns"], refused.body)
            XCTAssertTrue(self.errors(refused).first?["message"]?.contains("'ledger'") == true, refused.body)
        }
        // The catalog is the platform's: changing its requirements in an applied subtree is refused.
        let catalogChanged = exported.body.replacingOccurrences(of: "requires: [ledger]", with: "requires: [crm]")
        guard case .respond(let refused) = AdminEngine.handle(
            AdminFixture.request("PUT", "/admin/v1/nodes/p2/subtree", token: token, ifMatch: exported.header("etag"), body: catalogChanged),
            tree: self.tree, now: AdminFixture.now
        ) else { return XCTFail("expected a refusal") }
        XCTAssertEqual(self.errors(refused).map { $0["field"] }, ["catalog"], refused.body)
    }

    func testExplainShowsTheDependencyChain() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let response = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("GET", "/admin/v1/nodes/c1/explain?attribute=feature.payroll", token: token), tree: self.tree
        ))
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(response.json?["value"], .string("off"))
        let requirement = try XCTUnwrap(response.json?["requires"]?.array?.first)
        XCTAssertEqual(requirement["feature"], .string("ledger"))
        XCTAssertEqual(requirement["chain"], .strings(["payroll", "ledger"]))
        XCTAssertEqual(requirement["enabled"], .bool(true))
        XCTAssertEqual(requirement["source"], .string("package basic"))
        XCTAssertEqual(requirement["withheldBy"], .null)

        let other = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("GET", "/admin/v1/nodes/c1/explain?attribute=status", token: token), tree: self.tree
        ))
        XCTAssertNil(other.json?["requires"], "only a feature's explanation has a dependency chain")
    }

    /// Through the service and a real store: the refused change writes nothing.
    func testARefusedChangeLeavesTheStoreAsItWas() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let url = RedisURL(host: "127.0.0.1", port: server.port)
        let client = RedisClient(url: url, group: group)
        defer { try? client.shutdown().wait() }
        let loop = group.next()
        let store = AdminStore(keyPrefix: "erp-requirement-test")
        let settingsPath = FileManager.default.temporaryDirectory.appendingPathComponent("admin-requirements-\(getpid()).yaml").path
        try AdminFixture.settingsYAML.write(toFile: settingsPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: settingsPath) }

        let latest = LatestTree(try AdminFixture.tree(revision: 0, text: Self.treeYAML), onNewer: { _ in })
        let logger = Logger(label: "test")
        let feed = TreeFeed(
            client: client, url: url, store: store, latest: latest, loop: loop,
            logger: logger, compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        XCTAssertEqual(try feed.synchronize(reason: "test").wait(), 1, "seeded")
        let service = AdminService(
            latest: latest, feed: feed, store: store, client: client, revoker: { _, loop, _ in loop.makeSucceededFuture(0) },
            usage: .init(redis: client, prefix: "erp-requirement-test"), logger: logger, clock: { AdminFixture.now }
        )
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let refused = try service.handle(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p2", token: token, ifMatch: "*", body: #"{"features":["payroll"]}"#), on: loop
        ).wait()
        XCTAssertEqual(refused.status, 422, refused.body)
        XCTAssertTrue(refused.body.contains("'ledger'"), refused.body)
        XCTAssertEqual(try store.load(client: client, on: loop).wait()?.revision, 1, "nothing was written")

        let accepted = try service.handle(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p2", token: token, ifMatch: "*", body: #"{"features":["ledger","payroll"]}"#), on: loop
        ).wait()
        XCTAssertEqual(accepted.status, 200, accepted.body)
        XCTAssertEqual(try store.load(client: client, on: loop).wait()?.revision, 2)
    }
}
