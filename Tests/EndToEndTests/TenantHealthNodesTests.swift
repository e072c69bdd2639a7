import Foundation
import XCTest

/// Per-tenant health across two real gateway processes on one real redis-server: known traffic
/// for two partners through both nodes — relayed, refused by a day quota (429), answered 500 by
/// the backend — then the admin API as each kind of administrator. Publishing every second
/// (`tenantHealth.publishInterval`) keeps the wait short; the test polls for the figures with
/// a bound and asserts nothing about time.
final class TenantHealthNodesTests: AdminTestCase {

    static let healthTree = """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes: [{ path: /v1/ledger, feature: ledger }]
        tenants:
          # A limit at the OEM, so that every acme request goes through admission, which meters it.
          - { id: acme, kind: oem, placement: { tier: pooled, region: test }, limits: { rate: 100000, burst: 100000 } }
          - { id: pa, kind: partner, parent: acme }
          - { id: a1, kind: customer, parent: pa, package: basic, limits: { perDay: 4 } }
          - { id: a2, kind: customer, parent: pa, package: basic }
          - { id: pb, kind: partner, parent: acme }
          - { id: b1, kind: customer, parent: pb, package: basic, limits: { perDay: 3 } }
          - { id: globex, kind: oem, placement: { tier: pooled, region: test } }
          - { id: gp, kind: partner, parent: globex }
          - { id: g1, kind: customer, parent: gp, package: basic }

        """

    /// Leases off: each admission asks Redis, so a day quota refuses exactly past its limit
    /// whichever node the requests reach.
    static let extraSettings = """
        quotas:
          leases: { refreshInterval: 0ms }
        tenantHealth: { publishInterval: 1s, retentionMinutes: 10 }

        """

    override func setUp() async throws {
        try await super.setUp()
        for adminPort in [self.adminPort, try freePort()] {
            try self.addNode(
                adminPort: adminPort, settings: self.adminSettings(adminPort: adminPort, extra: Self.extraSettings), files: ["tenants.yaml": Self.healthTree]
            )
        }
    }

    override func tearDown() async throws {
        self.stopNodes()
        try await super.tearDown()
    }

    func send(_ count: Int, _ customer: String, _ target: String = "/v1/ledger", node: Int, expect status: Int) throws {
        let token = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: customer)
        for _ in 0..<count {
            let response = try request(port: self.nodes[node].gateway.port, "GET", target, headers: [("Authorization", "Bearer \(token)"), ("Connection", "close")])
            XCTAssertEqual(response.status, status, "\(customer) \(target) on node \(node): \(response.text)")
        }
    }

    func health(_ id: String, as token: String, query: String = "", requestID: String? = nil, node: Int = 0) throws -> RawHTTPConnection.Response {
        var headers = [("Authorization", "Bearer \(token)"), ("Connection", "close")]
        if let requestID { headers.append(("X-Request-Id", requestID)) }
        return try request(port: self.nodes[node].adminPort, "GET", "/admin/v1/nodes/\(id)/health\(query)", headers: headers)
    }

    /// Reads `id`'s health until `done` holds for it (at most about 15 s); returns the last answer.
    func healthOnce(_ id: String, as token: String, until done: ([String: Any]) -> Bool) throws -> [String: Any] {
        var json: [String: Any] = [:]
        for _ in 0..<75 {
            let response = try self.health(id, as: token)
            XCTAssertEqual(response.status, 200, response.text)
            json = try response.json()
            if done(json) { break }
            usleep(200_000)
        }
        return json
    }

    static func total(_ json: [String: Any]) -> [String: Int] {
        let total = json["total"] as? [String: Any] ?? [:]
        return ["requests", "status4xx", "status5xx", "status429"].reduce(into: [:]) { $0[$1] = total[$1] as? Int ?? -1 }
    }

    static func customers(_ json: [String: Any]) -> [String: [Int]] {
        let items = (json["customers"] as? [String: Any])?["items"] as? [[String: Any]] ?? []
        return items.reduce(into: [:]) { rows, item in
            rows[item["customer"] as? String ?? "?"] = ["requests", "refused", "errors"].map { item[$0] as? Int ?? -1 }
        }
    }

    func testPartnersSeeTheirOwnFiguresSummedOverEveryNode() throws {
        // Partner A (pa): a1's day quota is 4, a2's backend path answers 500.
        try self.send(2, "a1", node: 0, expect: 200)
        try self.send(2, "a2", "/v1/ledger/status/500", node: 0, expect: 500)
        try self.send(2, "a1", node: 1, expect: 200)
        try self.send(1, "a1", node: 0, expect: 429)
        try self.send(1, "a1", node: 1, expect: 429)
        try self.send(1, "a2", node: 1, expect: 200)
        // Partner B (pb): b1's day quota is 3.
        try self.send(1, "b1", node: 0, expect: 200)
        try self.send(1, "b1", "/v1/ledger/status/500", node: 0, expect: 500)
        try self.send(1, "b1", node: 1, expect: 200)
        try self.send(1, "b1", node: 1, expect: 429)
        // Another OEM's traffic, which nobody under acme may see.
        try self.send(3, "g1", node: 1, expect: 200)

        let expectedA = ["requests": 9, "status4xx": 2, "status5xx": 2, "status429": 2]
        let expectedB = ["requests": 4, "status4xx": 1, "status5xx": 1, "status429": 1]
        let expectedCustomersA = ["acme/pa/a1": [4, 2, 0], "acme/pa/a2": [3, 0, 2]]

        // Until both nodes have published all of it: globex's requests came last.
        let platform = try self.token("platform-admin", nil)
        let globex = try self.healthOnce("globex", as: platform) { Self.total($0)["requests"] == 3 }
        XCTAssertEqual(Self.total(globex)["requests"], 3)

        let partnerA = try self.token("partner-admin", "pa")
        // The 5xx counts reach the usage meter within a second of their own.
        let a = try self.healthOnce("pa", as: partnerA) { Self.customers($0) == expectedCustomersA }
        XCTAssertEqual(Self.total(a), expectedA, "\(a)")
        XCTAssertEqual(Self.customers(a), expectedCustomersA, "requests admitted, refused and 5xx per customer, from the usage meter")
        XCTAssertEqual(a["node"] as? String, "acme/pa")
        let minutes = a["perMinute"] as? [[String: Any]] ?? []
        XCTAssertEqual(minutes.count, 15)
        XCTAssertEqual(minutes.map { $0["requests"] as? Int ?? 0 }.reduce(0, +), 9, "the minutes add up to the total")
        XCTAssertGreaterThanOrEqual(minutes.map { $0["nodes"] as? Int ?? 0 }.reduce(0, +), 2, "both nodes published")
        XCTAssertLessThanOrEqual(minutes.map { $0["nodes"] as? Int ?? 0 }.max() ?? 0, 2)
        let total = a["total"] as? [String: Any] ?? [:]
        for figure in ["gatewayTimeUs", "upstreamTimeUs"] {
            let percentiles = total[figure] as? [String: Any] ?? [:]
            let (p50, p99) = (percentiles["p50"] as? Int, percentiles["p99"] as? Int)
            XCTAssertNotNil(p50, figure)
            XCTAssertGreaterThanOrEqual(p99 ?? -1, p50 ?? 0, figure)
        }

        // A sibling partner and the OEM are unknown ids to partner A's admin, byte for byte.
        let unknown = try self.health("nope", as: partnerA, requestID: "health-probe")
        XCTAssertEqual(unknown.status, 404)
        for hidden in ["pb", "acme", "b1", "globex"] {
            let response = try self.health(hidden, as: partnerA, requestID: "health-probe")
            XCTAssertEqual(response.status, 404, hidden)
            XCTAssertEqual(response.body, unknown.body, hidden)
        }
        // Its own customer: no per-minute figures, its own usage row.
        let a1 = try self.health("a1", as: partnerA, node: 1)
        XCTAssertEqual(a1.status, 200, a1.text)
        XCTAssertTrue(try a1.json()["perMinute"] is NSNull)
        XCTAssertEqual(Self.customers(try a1.json()), ["acme/pa/a1": [4, 2, 0]])

        // The OEM's admin sees both partners, and the OEM's own figures are their sum.
        let oem = try self.token("oem-admin", "acme")
        XCTAssertEqual(Self.total(try self.health("pb", as: oem).json()), expectedB)
        XCTAssertEqual(Self.total(try self.health("pa", as: oem, node: 1).json()), expectedA)
        let acme = try self.health("acme", as: oem).json()
        XCTAssertEqual(Self.total(acme), ["requests": 13, "status4xx": 3, "status5xx": 3, "status429": 3])
        XCTAssertEqual(Set(Self.customers(acme).keys), ["acme/pa/a1", "acme/pa/a2", "acme/pb/b1"])
        XCTAssertEqual(try self.health("globex", as: oem).status, 404)
        // The platform sees every OEM.
        XCTAssertEqual(try self.health("pa", as: platform, query: "?minutes=61").status, 400)
        // A page of one customer names the next.
        let page = try self.health("acme", as: platform, query: "?limit=1").json()
        XCTAssertEqual((page["customers"] as? [String: Any])?["next"] as? String, "a1")
    }

    func testANodeWritesItsLastFiguresWhenItStops() throws {
        // A third node publishing once a minute: what it counted reaches the store at its stop.
        let settings = self.adminSettings(adminPort: try freePort(), extra: "tenantHealth: { publishInterval: 60s }\n")
        let slow = try GatewayProcess(settings: settings, files: ["tenants.yaml": Self.healthTree])
        let token = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "g1")
        for status in [200, 500] {
            let response = try request(port: slow.port, "GET", "/v1/ledger/status/\(status)", headers: [("Authorization", "Bearer \(token)"), ("Connection", "close")])
            XCTAssertEqual(response.status, status)
        }
        XCTAssertEqual(slow.stop(), 0)
        let platform = try self.token("platform-admin", nil)
        let globex = try self.health("globex", as: platform).json()
        XCTAssertEqual(Self.total(globex), ["requests": 2, "status4xx": 0, "status5xx": 1, "status429": 0], slow.log.suffix(2_000).description)
    }
}
