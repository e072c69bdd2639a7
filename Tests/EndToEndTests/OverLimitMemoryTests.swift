import Foundation
import XCTest

/// The over-limit memory in the running gateway: it refuses without Redis only what Redis
/// would refuse, judged per cost and per limit kind, on every event loop alike (a cheap request
/// that still fit used to be refused until UTC midnight with `r=0`).
final class OverLimitMemoryTests: GatewayTestCase {
    var redis: RedisProcess!

    /// `/v1/exports` costs 5, `/v1/ledger` 1. c5 and c6 have day quotas, c7 a rate whose burst
    /// holds one export and one ledger request.
    static let tree = SecurityMatrixTests.tree
        .replacingOccurrences(of: "    - { path: /v1/reports, method: GET }", with: "    - { path: /v1/reports, method: GET }\n    - { path: /v1/exports, cost: 5 }")
        + """

          - { id: c5, kind: customer, parent: p1, package: full, limits: { perDay: 12 } }
          - { id: c6, kind: customer, parent: p1, package: full, limits: { perDay: 24 } }
          - { id: c7, kind: customer, parent: p1, package: full, limits: { rate: 1, burst: 6 } }

        """

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        try await self.startBackends(1)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis.stop()
    }

    private func startGateway(eventLoops: Int) throws {
        self.gateway = try self.treeGateway(
            Self.tree, ["listener": ["eventLoops": "\(eventLoops)"]], extra: SecurityMatrixTests.platformIssuer + self.redis.settings
        )
    }

    private func token(_ tenant: String) throws -> String {
        try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant)
    }

    /// Sends `GET path` as `tenant`, every time on the same keep-alive connection: one event loop.
    private func oneConnection(as tenant: String) throws -> (String) throws -> RawHTTPConnection.Response {
        let token = try self.token(tenant)
        let client = try RawHTTPConnection(port: self.port)
        return { path in
            try client.send(requestText("GET", path, headers: [("Authorization", "Bearer \(token)")]))
            return try client.readResponse()
        }
    }

    /// Seconds from now to the next UTC midnight; skips the test when the day could end during it.
    private func secondsToUTCMidnight() throws -> Int {
        let seconds = 86_400 - Int(Date().timeIntervalSince1970) % 86_400
        if seconds < 120 { throw XCTSkip("too close to UTC midnight: the day quota would start afresh during the test") }
        return seconds
    }

    /// The status, the `r` of the `RateLimit` field (-1 without one) and `Retry-After` (-1 without).
    private func outcome(_ response: RawHTTPConnection.Response) -> [Int] {
        let state = response.header("ratelimit") ?? ""
        let remaining = state.split(separator: ";").first { $0.hasPrefix("r=") }.flatMap { Int($0.dropFirst(2)) } ?? -1
        return [response.status, remaining, response.header("retry-after").flatMap { Int($0) } ?? -1]
    }

    /// A 429 for the customer's day quota, with `r` in `remaining` and `Retry-After` to UTC midnight.
    private func assertDayRefusal(
        _ response: RawHTTPConnection.Response, remaining: ClosedRange<Int>, midnight: Int, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(response.status, 429, response.text, file: file, line: line)
        XCTAssertTrue(remaining.contains(self.outcome(response)[1]), response.header("ratelimit") ?? "no RateLimit", file: file, line: line)
        XCTAssertEqual(response.header("ratelimit-policy"), "\"customer-day\";q=\(self.quota);w=86400", file: file, line: line)
        let retry = self.outcome(response)[2]
        // Retry-After counts to UTC midnight; a second or two may pass between the two clocks' readings.
        XCTAssertTrue(abs(retry - midnight) <= 2, "Retry-After \(retry), \(midnight) s to UTC midnight", file: file, line: line)
    }

    /// The day quota of the test's customer, as `RateLimit-Policy` names it.
    private var quota = 0

    /// The case of the issue: one event loop, perDay 12, exports of cost 5.
    func testOneLoopAdmitsCheapRequestsThatStillFitAfterAnExpensiveOneIsRefused() throws {
        let midnight = try self.secondsToUTCMidnight()
        try self.startGateway(eventLoops: 1)
        self.quota = 12
        let send = try self.oneConnection(as: "c5")
        XCTAssertEqual(self.outcome(try send("/v1/exports")), [200, 7, -1])
        XCTAssertEqual(self.outcome(try send("/v1/exports")), [200, 2, -1])
        self.assertDayRefusal(try send("/v1/exports"), remaining: 2...2, midnight: midnight)
        // The refusal is remembered: the same request again is refused without Redis, alike.
        let runs = try self.redis.scriptRuns()
        self.assertDayRefusal(try send("/v1/exports"), remaining: 2...2, midnight: midnight)
        XCTAssertEqual(try self.redis.scriptRuns(), runs, "a remembered refusal costs Redis nothing")
        // Two units are left: two ledger requests fit, a third does not.
        XCTAssertEqual(self.outcome(try send("/v1/ledger")), [200, 1, -1])
        XCTAssertEqual(self.outcome(try send("/v1/ledger")), [200, 0, -1])
        self.assertDayRefusal(try send("/v1/ledger"), remaining: 0...0, midnight: midnight)
        self.assertDayRefusal(try send("/v1/ledger"), remaining: 0...0, midnight: midnight)
        self.assertDayRefusal(try send("/v1/exports"), remaining: 0...0, midnight: midnight)
        XCTAssertEqual(self.backends[0].statistics.requests, 4)
        XCTAssertEqual(try self.redis.cli(["GET", "erp-test:q:{acme}:c5:day:\(Self.today())"]).trimmingCharacters(in: .whitespacesAndNewlines), "12")
    }

    /// Many connections over two event loops: after both loops have seen the expensive request
    /// refused, cheap requests that fit are admitted on either, and only the expensive one (and,
    /// once the quota is spent, every one) is refused.
    func testEveryLoopAgreesWithRedisAfterAnExpensiveRequestIsRefused() throws {
        let midnight = try self.secondsToUTCMidnight()
        try self.startGateway(eventLoops: 2)
        self.quota = 24
        let token = try self.token("c6")
        // A fresh connection per request: the gateway hands connections to its loops in turn.
        func send(_ path: String) throws -> RawHTTPConnection.Response {
            try request(port: self.port, "GET", path, headers: [("Authorization", "Bearer \(token)")])
        }
        for left in [19, 14, 9, 4] {
            XCTAssertEqual(self.outcome(try send("/v1/exports")), [200, left, -1])
        }
        for _ in 0..<8 {
            self.assertDayRefusal(try send("/v1/exports"), remaining: 4...4, midnight: midnight)
        }
        for left in [3, 2, 1, 0] {
            XCTAssertEqual(self.outcome(try send("/v1/ledger")), [200, left, -1], "a request that fits is admitted on every loop")
            // Refused by Redis (r: what is left now) or by a loop's memory (r: what was left
            // when that loop last heard of a refusal, at most the 4 of the first).
            self.assertDayRefusal(try send("/v1/exports"), remaining: left...4, midnight: midnight)
        }
        for _ in 0..<8 {
            self.assertDayRefusal(try send("/v1/ledger"), remaining: 0...0, midnight: midnight)
        }
        XCTAssertEqual(self.backends[0].statistics.requests, 8)
        XCTAssertEqual(try self.redis.cli(["GET", "erp-test:q:{acme}:c6:day:\(Self.today())"]).trimmingCharacters(in: .whitespacesAndNewlines), "24")
    }

    /// A rate (1 per second, burst 6): after an export fills 5 of the 6, a second export is
    /// refused for about 4 s, while a ledger request fits at once.
    func testACheaperRequestFitsARateBeforeTheRefusedOne() throws {
        try self.startGateway(eventLoops: 1)
        let send = try self.oneConnection(as: "c7")
        XCTAssertEqual(self.outcome(try send("/v1/exports")), [200, 1, -1])
        let refused = try send("/v1/exports")
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(refused.header("ratelimit-policy"), "\"customer-rate\";q=6;w=6")
        XCTAssertEqual(self.outcome(refused)[1], 1, "one unit-cost request still fits")
        XCTAssertEqual(self.outcome(try send("/v1/ledger"))[0], 200, "the remembered refusal was for cost 5, not 1")
        XCTAssertEqual(self.outcome(try send("/v1/exports"))[0], 429)
        XCTAssertEqual(self.backends[0].statistics.requests, 2)
    }

    private static func today() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }
}
