@testable import AdminAPI
import Hierarchy
import Quotas
import TenantHealth
import XCTest

/// The health endpoint's decisions (who may read what, the window, the customers' page) and
/// its answer, without a store.
final class AdminHealthTests: XCTestCase {
    var tree: StoredTree!

    override func setUpWithError() throws {
        self.tree = try AdminFixture.tree()
    }

    func read(_ target: String, as token: String, file: StaticString = #filePath, line: UInt = #line) -> HealthRead? {
        switch AdminEngine.handle(AdminFixture.request("GET", target, token: token), tree: self.tree, now: AdminFixture.now) {
        case .readHealth(let read): return read
        case .respond(let response):
            XCTFail("expected a health read, got \(response.status) \(response.body)", file: file, line: line)
        default:
            XCTFail("expected a health read", file: file, line: line)
        }
        return nil
    }

    func testAPartnerAdminReadsItsOwnFiguresOverTheLastMinutes() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let read = try XCTUnwrap(self.read("/admin/v1/nodes/p1/health", as: token))
        XCTAssertEqual(read.figures?.description, "acme/p1")
        let current = AdminFixture.now / 60
        XCTAssertEqual(read.minutes, Array((current - 14)...current), "15 minutes by default, the current one last")
        XCTAssertEqual(read.customers.map(\.description), ["acme/p1/c1", "acme/p1/c2"])
        XCTAssertNil(read.next)
        XCTAssertEqual(read.day, "20270115")
        XCTAssertEqual(try XCTUnwrap(self.read("/admin/v1/nodes/p1/health?minutes=60", as: token)).minutes.count, 60)
        XCTAssertEqual(try XCTUnwrap(self.read("/admin/v1/nodes/p1/health?minutes=1", as: token)).minutes, [current])
    }

    func testASiblingOrAnAncestorIsAnUnknownNodeByteForByte() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let unknown = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/nope/health", token: token), tree: self.tree))
        XCTAssertEqual(unknown.status, 404)
        for hidden in ["p2", "acme", "globex", "gp", "c3"] {
            let response = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/\(hidden)/health", token: token), tree: self.tree))
            XCTAssertEqual(response.status, 404, hidden)
            XCTAssertEqual(response.body, unknown.body, hidden)
            XCTAssertEqual(response.headers.map { "\($0.name): \($0.value)" }, unknown.headers.map { "\($0.name): \($0.value)" }, hidden)
        }
        // A bad window on a hidden node is still the unknown node: nothing is judged before visibility.
        let bad = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p2/health?minutes=0", token: token), tree: self.tree))
        XCTAssertEqual(bad.body, unknown.body)
    }

    func testTheWindowMustBeOneToSixtyMinutes() throws {
        let token = try AdminFixture.token("oem-admin", node: "acme")
        for bad in ["0", "61", "-1", "x", "", "1.5"] {
            let response = AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/acme/health?minutes=\(bad)", token: token), tree: self.tree)
            XCTAssertEqual(response?.status, 400, bad)
            XCTAssertEqual(response?.problemType, "urn:erp-gateway:problem:malformed-minutes", bad)
        }
    }

    func testCustomersComeInPagesByID() throws {
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let first = try XCTUnwrap(self.read("/admin/v1/nodes/acme/health?limit=2", as: token))
        XCTAssertEqual(first.figures?.description, "acme")
        XCTAssertEqual(first.customers.map(\.description), ["acme/p1/c1", "acme/p1/c2"])
        XCTAssertEqual(first.next, "c2")
        let second = try XCTUnwrap(self.read("/admin/v1/nodes/acme/health?limit=2&after=c2", as: token))
        XCTAssertEqual(second.customers.map(\.description), ["acme/p2/c3"])
        XCTAssertNil(second.next)
        XCTAssertEqual(try XCTUnwrap(self.read("/admin/v1/nodes/acme/health?limit=0", as: token)).limit, 1, "clamped like the audit log's limit")
    }

    func testACustomerHasNoPerMinuteFiguresOnlyItsOwnUsage() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let read = try XCTUnwrap(self.read("/admin/v1/nodes/c1/health", as: token))
        XCTAssertNil(read.figures, "its partner's figures would tell it about its siblings")
        XCTAssertEqual(read.customers.map(\.description), ["acme/p1/c1"])
        let response = AdminEngine.healthResponse(read, published: [:], usage: [UsageMeter.Day(day: read.day, requests: 4, cost: 4, refused: 1, errors: 2)])
        let json = try XCTUnwrap(response.json)
        XCTAssertEqual(json["perMinute"], .null)
        XCTAssertEqual(json["total"], .null)
        XCTAssertEqual(json["customers"]?["items"], .array([.object([
            "customer": .string("acme/p1/c1"), "requests": .integer(4), "refused": .integer(1), "errors": .integer(2),
        ])]))
    }

    func testTheAnswerMergesEveryNodesFiguresPerMinute() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let read = try XCTUnwrap(self.read("/admin/v1/nodes/p1/health?minutes=2", as: token))
        var nodeA = HealthFigures()
        nodeA.record(status: 200, gatewayMicroseconds: 100, upstreamMicroseconds: 1_000)
        nodeA.record(status: 503, gatewayMicroseconds: 100, upstreamMicroseconds: nil)
        var nodeB = HealthFigures()
        nodeB.record(status: 429, gatewayMicroseconds: 10_000, upstreamMicroseconds: nil)
        let usage = read.customers.map { UsageMeter.Day(day: read.day, requests: $0.leaf.rawValue == "c1" ? 2 : 0, cost: 0, refused: 0) }
        let response = AdminEngine.healthResponse(read, published: [read.minutes[1]: [nodeA.text, nodeB.text]], usage: usage)
        XCTAssertEqual(response.status, 200)
        let json = try XCTUnwrap(response.json)
        XCTAssertEqual(json["node"], .string("acme/p1"))
        XCTAssertEqual(json["kind"], .string("partner"))
        // 1_800_000_000 s is 2027-01-15T08:00:00Z: the window is 07:59 and 08:00.
        XCTAssertEqual(json["window"], .object(["from": .string("2027-01-15T07:59:00Z"), "to": .string("2027-01-15T08:01:00Z"), "minutes": .integer(2)]))
        let minutes = try XCTUnwrap(json["perMinute"]?.array)
        XCTAssertEqual(minutes.map { $0["minute"] }, [.string("2027-01-15T07:59:00Z"), .string("2027-01-15T08:00:00Z")])
        XCTAssertEqual(minutes[0]["requests"], .integer(0))
        XCTAssertEqual(minutes[0]["gatewayTimeUs"], .object(["p50": .null, "p99": .null]))
        XCTAssertEqual(minutes[1]["nodes"], .integer(2))
        XCTAssertEqual(json["total"], .object([
            "requests": .integer(3), "status4xx": .integer(1), "status5xx": .integer(1), "status429": .integer(1),
            "gatewayTimeUs": .object(["p50": .integer(99), "p99": .integer(10_624)]),
            "upstreamTimeUs": .object(["p50": .integer(939), "p99": .integer(939)]),
        ]))
        XCTAssertEqual(json["customers"]?["day"], .string("2027-01-15"))
        XCTAssertEqual(json["customers"]?["next"], .null)
        XCTAssertEqual(json["customers"]?["items"]?.array?.count, 2)
    }
}
