import Foundation
import XCTest

/// Quotas in the running gateway: every level of the tenant's path checked and charged in Redis,
/// refusals answered 429 with Retry-After and RateLimit headers naming the level, never forwarded.
final class QuotaTests: GatewayTestCase {
    var redis: RedisProcess!

    static let tree = SecurityMatrixTests.tree
        .replacingOccurrences(of: "  - { id: p2, kind: partner, parent: acme }", with: "  - { id: p2, kind: partner, parent: acme, limits: { perDay: 3 } }")
        .replacingOccurrences(of: "  - { id: c1, kind: customer, parent: p1, package: full, branding: { primaryColor: \"#abcdef\" } }",
                              with: "  - { id: c1, kind: customer, parent: p1, package: full, limits: { rate: 1, burst: 2 } }")
        .replacingOccurrences(of: "    - { path: /v1/reports, method: GET }", with: "    - { path: /v1/reports, method: GET }\n    - { path: /delay }")
        .replacingOccurrences(of: "  - { id: g1, kind: customer, parent: gp, package: full }", with: "  - { id: g1, kind: customer, parent: gp, package: full, limits: { concurrency: 1 } }")
        + "\n  - { id: c2b, kind: customer, parent: p2, package: full }\n"

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(Self.tree, ["listener": ["http2": "{ cleartext: true }"]], extra: SecurityMatrixTests.platformIssuer + self.redis.settings)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis.stop()
    }

    func get(_ tenant: String, over wire: WireProtocol? = nil) throws -> RawHTTPConnection.Response {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant)
        let headers = [("Authorization", "Bearer \(token)")]
        guard let wire else { return try request(port: self.port, "GET", "/v1/ledger", headers: headers) }
        return try curlRequest(wire, port: self.port, "GET", "/v1/ledger", headers: headers)
    }

    func testTheCustomersBurstIsAdmittedThenRefusedWithHeaders() throws {
        try self.assertBurstAdmittedThenRefused(over: nil)
    }

    func testTheCustomersBurstIsAdmittedThenRefusedWithHeadersOverHTTP2() throws {
        try self.assertBurstAdmittedThenRefused(over: .http2)
    }

    /// c1 (rate 1, burst 2): two admitted with RateLimit headers, the third refused 429 with
    /// Retry-After and the level that refused, never forwarded. `wire`: through curl, else raw
    /// HTTP/1.1.
    func assertBurstAdmittedThenRefused(over wire: WireProtocol?) throws {
        let first = try self.get("c1", over: wire)
        XCTAssertEqual(first.status, 200)
        XCTAssertNotNil(first.header("ratelimit"), "admitted responses carry the remaining budget")
        XCTAssertNotNil(first.header("ratelimit-policy"))
        XCTAssertEqual(try self.get("c1", over: wire).status, 200)
        let refused = try self.get("c1", over: wire)
        try self.assertProblem(refused, status: 429, slug: "quota-exceeded")
        XCTAssertNotNil(refused.header("retry-after"))
        XCTAssertTrue(refused.header("ratelimit-policy")?.contains("customer-rate") ?? false, refused.header("ratelimit-policy") ?? "none")
        XCTAssertEqual(self.backends[0].statistics.requests, 2, "the refused request never reached the upstream")
    }

    func testAPartnersBudgetIsSharedByItsCustomers() throws {
        XCTAssertEqual(try self.get("c2").status, 200)
        XCTAssertEqual(try self.get("c2").status, 200)
        XCTAssertEqual(try self.get("c2b").status, 200)
        let refused = try self.get("c2b")
        try self.assertProblem(refused, status: 429, slug: "quota-exceeded")
        XCTAssertTrue(refused.header("ratelimit-policy")?.contains("partner-day") ?? false, refused.header("ratelimit-policy") ?? "none")
        XCTAssertEqual(try self.get("c1").status, 200, "another partner's customer is unaffected")
        XCTAssertEqual(self.backends[0].statistics.requests, 4)
    }

    func testAFloodIsRefusedLocallyOnceOverLimit() throws {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        // One connection: one event loop, whose memory of the refusal is what is tested.
        let client = try RawHTTPConnection(port: self.port)
        func send() throws -> RawHTTPConnection.Response {
            try client.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]))
            return try client.readResponse()
        }
        XCTAssertEqual(try send().status, 200)
        XCTAssertEqual(try send().status, 200)
        XCTAssertEqual(try send().status, 429)
        // With Redis gone, an unknown request would be admitted (fail open); the remembered
        // refusal still holds, so the flood costs neither Redis nor the backend anything.
        self.redis.stop()
        let remembered = try send()
        try self.assertProblem(remembered, status: 429, slug: "quota-exceeded")
        XCTAssertNotNil(remembered.header("retry-after"))
        XCTAssertEqual(self.backends[0].statistics.requests, 2)
    }

    func testTwoGatewayNodesShareOneExactQuota() throws {
        // c2's partner p2 allows 3 per day; give the second node the same settings and Redis.
        let second = try self.treeGateway(Self.tree, extra: SecurityMatrixTests.platformIssuer + self.redis.settings)
        defer { second.stop() }
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c2")
        var admitted = 0
        var refused = 0
        // 3N requests for a quota of N = 3, alternating between the nodes.
        for index in 0..<9 {
            let port = index % 2 == 0 ? self.port : second.port
            let response = try request(port: port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")])
            if response.status == 200 { admitted += 1 } else if response.status == 429 { refused += 1 }
        }
        XCTAssertEqual(admitted, 3, "exactly the quota across both nodes")
        XCTAssertEqual(refused, 6)
        XCTAssertEqual(self.backends[0].statistics.requests, 3)
    }

    func testARefusedFloodCostsRedisNothing() throws {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        let client = try RawHTTPConnection(port: self.port)
        func send() throws -> Int {
            try client.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]))
            return try client.readResponse().status
        }
        XCTAssertEqual(try send(), 200)
        XCTAssertEqual(try send(), 200)
        XCTAssertEqual(try send(), 429)
        let before = try self.redis.scriptRuns()
        XCTAssertGreaterThanOrEqual(before, 3, "the three admissions ran the script")
        // The flood comes over fresh connections: one connection refused again and again is
        // paused for each refusal's Retry-After (operations.md), which would let the limit
        // recover between its requests. Each event loop remembers its own refusals: the first
        // request landing on the second loop asks Redis once.
        for _ in 0..<50 {
            let flooder = try RawHTTPConnection(port: self.port)
            try flooder.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]))
            XCTAssertEqual(try flooder.readResponse().status, 429)
        }
        XCTAssertLessThanOrEqual(try self.redis.scriptRuns(), before + 1, "no quota script ran while the tenant was remembered as over its limit")
    }

    func testUsageIsMeteredPerCustomerPerDay() throws {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        let client = try RawHTTPConnection(port: self.port)
        func send() throws -> Int {
            try client.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]))
            return try client.readResponse().status
        }
        XCTAssertEqual([try send(), try send(), try send(), try send()], [200, 200, 429, 429])
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let today = formatter.string(from: Date())
        // The second refusal was decided locally and reaches Redis within about a second.
        var output = ""
        let deadline = Date().addingTimeInterval(5)
        repeat {
            usleep(300_000)
            let (status, text) = try runCommand(
                GatewayProcess.binary, ["usage", "--config", self.gateway.configPath, "--tenant", "c1", "--from", today, "--to", today, "--format", "json"]
            )
            XCTAssertEqual(status, 0, text)
            output = text
        } while !output.contains("\"refused\":2") && Date() < deadline
        XCTAssertTrue(output.contains("\"day\":\"\(today)\",\"requests\":2,\"cost\":2,\"refused\":2"), output)
        let (_, table) = try runCommand(GatewayProcess.binary, ["usage", "--config", self.gateway.configPath, "--tenant", "c1", "--from", today, "--to", today])
        XCTAssertTrue(table.contains("acme/p1/c1"), table)
    }

    func testConcurrencySlotsAreHeldWhileInFlightAndGivenBack() throws {
        let token = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "g1")
        let slow = try RawHTTPConnection(port: self.port)
        try slow.send(requestText("GET", "/delay/800", headers: [("Authorization", "Bearer \(token)")]))
        // While the slow request holds g1's only slot, another is refused.
        let deadline = Date().addingTimeInterval(5)
        while self.backends[0].statistics.connectionsAccepted == 0, Date() < deadline { usleep(10_000) }
        usleep(100_000)
        let refused = try request(port: self.port, "GET", "/delay/1", headers: [("Authorization", "Bearer \(token)")])
        try self.assertProblem(refused, status: 429, slug: "quota-exceeded")
        XCTAssertTrue(refused.header("ratelimit-policy")?.contains("customer-concurrency") ?? false, refused.header("ratelimit-policy") ?? "none")
        XCTAssertEqual(try slow.readResponse().status, 200)
        // The slot comes back when the exchange ends.
        var status = 0
        let until = Date().addingTimeInterval(5)
        repeat {
            status = try request(port: self.port, "GET", "/delay/1", headers: [("Authorization", "Bearer \(token)")]).status
            if status != 200 { usleep(50_000) }
        } while status != 200 && Date() < until
        XCTAssertEqual(status, 200, "the in-flight slot was released")
    }
}
