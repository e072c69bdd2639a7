import Foundation
import XCTest

/// Redis stopped mid-run: each fail mode behaves as configured, no request waits on Redis, and
/// admission through Redis resumes by itself when it returns.
final class QuotaFailModeTests: GatewayTestCase {
    var redis: RedisProcess!
    var token = ""

    func start(failMode: String) async throws {
        self.redis = try RedisProcess()
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(
            QuotaTests.tree, extra: SecurityMatrixTests.platformIssuer + self.redis.settings + "quotas:\n  failMode:\n    pooled: \(failMode)\n"
        )
        // c2's partner allows 3 a day: plenty for what each test needs before Redis goes.
        self.token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis?.stop()
    }

    /// One request on a fresh connection; a reply must come within 3 s or the request fails.
    func send() throws -> RawHTTPConnection.Response {
        let client = try RawHTTPConnection(port: self.port, receiveTimeout: 3)
        try client.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(self.token)")]))
        return try client.readResponse()
    }

    func testClosedRefusesWhileRedisIsAwayAndRecovers() async throws {
        try await self.start(failMode: "closed")
        XCTAssertEqual(try self.send().status, 200)
        let port = self.redis.port
        self.redis.stop()
        let refused = try self.send()
        try self.assertProblem(refused, status: 503, slug: "quota-store-unavailable")
        XCTAssertEqual(refused.header("retry-after"), "1")
        self.redis = try RedisProcess(port: port)
        var status = 0
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            // c1 allows a burst of 2 and one a second: space the probes.
            status = try self.send().status
            if status == 200 { break }
            usleep(500_000)
        }
        XCTAssertEqual(status, 200, "admission through Redis resumes by itself")
    }

    func testOpenAdmitsWhileRedisIsAway() async throws {
        try await self.start(failMode: "open")
        XCTAssertEqual(try self.send().status, 200)
        self.redis.stop()
        for _ in 0..<20 { XCTAssertEqual(try self.send().status, 200) }
        XCTAssertEqual(self.backends[0].statistics.requests, 21)
        // The outage is logged once per event loop (two here) and then counted, not per request.
        let warnings = self.gateway.log.split(separator: "\n").filter { $0.contains("quota store unavailable; admitting") && !$0.contains("(repeated") }
        XCTAssertTrue((1...2).contains(warnings.count), "\(warnings.count) lines:\n" + warnings.joined(separator: "\n"))
        XCTAssertTrue(self.gateway.waitForLog("quota store unavailable; admitting (repeated ", timeout: 15), self.gateway.log)
    }

    func testLocalKeepsCuttingAFloodWhileRedisIsAway() async throws {
        try await self.start(failMode: "local")
        self.redis.stop()
        // c1: rate 1/s with a burst of 2, enforced by each event loop on its own; one
        // keep-alive connection stays on one loop.
        let client = try RawHTTPConnection(port: self.port, receiveTimeout: 3)
        var statuses: [Int] = []
        for _ in 0..<5 {
            try client.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(self.token)")]))
            statuses.append(try client.readResponse().status)
        }
        XCTAssertEqual(statuses, [200, 200, 429, 429, 429])
        // Refused by the local limits: logged like any quota refusal, with who decided.
        XCTAssertTrue(self.gateway.waitForLog("decided-by=local limits"), self.gateway.log)
        let refusals = self.gateway.log.split(separator: "\n").filter { $0.contains("request refused") && $0.contains("phase=admit problem=quota-exceeded") }
        XCTAssertEqual(refusals.count, 3, self.gateway.log)
    }
}
