@testable import Hierarchy
@testable import Quotas
@testable import RedisClient
import NIOCore
import XCTest

final class QuotaPlanTests: XCTestCase {
    private let start: Int64 = 1_764_000_000_000_000 // 2025-11-24T16:00:00Z

    func testScriptSHAMatchesAKnownVector() {
        XCTAssertEqual(SHA1.hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(SHA1.hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(SHA1.hex(String(repeating: "a", count: 1_000)), "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    func testKeysAndArgumentsFollowTheScriptLayout() throws {
        let plan = try QuotaPlan(levels: threeLevels(), oem: try NodeID("acme"), cost: 3, now: start)
        XCTAssertEqual(plan.keys.count, 12)
        XCTAssertEqual(Array(plan.keys.prefix(4)), [
            "erp:q:{acme}:contoso:rate", "erp:q:{acme}:contoso:day:20251124",
            "erp:q:{acme}:contoso:month:202511", "erp:q:{acme}:contoso:inflight",
        ])
        XCTAssertEqual(plan.keys[4], "erp:q:{acme}:northwind:rate")
        XCTAssertEqual(plan.keys[8], "erp:q:{acme}:acme:rate")
        let untilDayEnd: Int64 = 8 * 3_600_000_000
        let untilMonthEnd: Int64 = untilDayEnd + 6 * 86_400_000_000
        let dayTTL: Int64 = 8 * 3_600 + 3_600
        let monthTTL: Int64 = 8 * 3_600 + 6 * 86_400 + 3_600
        let globals: [String] = [String(start), "3", "3", String(untilDayEnd), String(untilMonthEnd), String(dayTTL), String(monthTTL), "600"]
        XCTAssertEqual(Array(plan.arguments.prefix(8)), globals)
        // customer: 10/s burst 5, 1000/day; partner: 20/month, 2 in flight; OEM: 100/s, burst = rate.
        XCTAssertEqual(Array(plan.arguments[8...]), [
            "100000", "5", "1000", "-1", "-1",
            "0", "0", "-1", "20", "2",
            "10000", "100", "-1", "-1", "-1",
        ])
        XCTAssertEqual(plan.inflightKeys, ["erp:q:{acme}:northwind:inflight"])
    }

    /// The call sent to Redis is written from the plan without the lists above; it must carry
    /// exactly what they list, for every shape of plan: admission or lease, metered or not, a
    /// rate given back at some levels.
    func testTheScriptCallCarriesTheListedKeysAndArguments() throws {
        let oem = try NodeID("acme")
        let customer = try NodeID("contoso")
        let giveBack = QuotaLeaseRequest.RateGiveBack(expectedTAT: start + 5_000, returnedTAT: start + 1_000)
        let lease = QuotaLeaseRequest(
            customer: customer, want: 40, need: 1, share: 3, giveBack: 7, rateGiveBack: [giveBack, nil, giveBack],
            usage: QuotaUsage(requests: 12, cost: 30, refused: 2), meterRefusal: true, hold: 250_000, forRequest: true
        )
        let plans = [
            try QuotaPlan(levels: threeLevels(), oem: oem, cost: 3, now: start),
            try QuotaPlan(levels: threeLevels(), oem: oem, cost: 1, now: start, usage: (customer: customer, retentionDays: 35)),
            try QuotaPlan(levels: threeLevels(), oem: oem, cost: 2, now: start, prefix: "staging", usage: (customer: customer, retentionDays: 1), lease: lease),
            try QuotaPlan(levels: Array(threeLevels().prefix(1)), oem: oem, cost: 1, now: start, lease: QuotaLeaseRequest(customer: customer, want: 0, need: 0)),
        ]
        for plan in plans {
            let written = RedisCommand(plan.scriptCall(sha: QuotaScript.leaseSHA)).bytes
            let listed = try RedisCommand(["EVALSHA", QuotaScript.leaseSHA, String(plan.keys.count)] + plan.keys + plan.arguments).bytes
            XCTAssertEqual(String(buffer: written), String(buffer: listed))
            XCTAssertEqual(written.readableBytes, listed.readableBytes)
        }
        XCTAssertEqual(plans[2].keys.last, "staging:usage:{acme}:contoso:20251124")
        XCTAssertEqual(plans[0].slotKey.map(RedisKeySlot.slot(of:)), RedisKeySlot.slot(of: "erp:q:{acme}:acme:rate"))
    }

    /// A lease's refills and give-backs are plans made from the last one at a later instant:
    /// within the same UTC day they keep its levels and keys, and are the plan made afresh.
    func testALeasingPlanLaterTheSameDayIsThePlanMadeAfresh() throws {
        let acme = try NodeID("acme")
        let contoso = try NodeID("contoso")
        let first = try QuotaPlan(levels: threeLevels(), oem: acme, cost: 1, now: start, usage: (contoso, 30))
        let request = QuotaLeaseRequest(customer: contoso, want: 12, need: 0, giveBack: 2, usage: QuotaUsage())
        for later in [start + 1, start + 3_600_000_000, start + 8 * 3_600_000_000 - 1] {
            let fresh = try QuotaPlan(levels: threeLevels(), oem: acme, cost: 2, now: later, usage: (contoso, 30), lease: request)
            let leasing = first.leasing(request, cost: 2, now: later)
            XCTAssertEqual(leasing, fresh)
            XCTAssertEqual(leasing.keys, fresh.keys)
            XCTAssertEqual(leasing.arguments, fresh.arguments)
        }
        // Past midnight (8 h after `start`) the day's keys and the usage key are the next day's.
        let nextDay = start + 8 * 3_600_000_000
        let leasing = first.leasing(request, cost: 1, now: nextDay)
        XCTAssertEqual(leasing, try QuotaPlan(levels: threeLevels(), oem: acme, cost: 1, now: nextDay, usage: (contoso, 30), lease: request))
        XCTAssertEqual(leasing.keys[1], "erp:q:{acme}:contoso:day:20251125")
        XCTAssertNotEqual(leasing.usageKey, first.usageKey)
    }

    func testUnusableRateIsRefusedAtPlanTime() throws {
        let level = LevelLimits(node: try NodeID("contoso"), kind: .customer, limits: Limits(ratePerSecond: 10, burst: 0))
        XCTAssertThrowsError(try QuotaPlan(levels: [level], oem: try NodeID("acme"), cost: 1, now: start)) {
            XCTAssertEqual($0 as? RateLimitError, .burstNotPositive)
        }
    }

    // MARK: - Decisions

    func testParsesAnAdmission() throws {
        let plan = try QuotaPlan(levels: threeLevels(), oem: try NodeID("acme"), cost: 1, now: start)
        let reply = RESPValue.array([.integer(1)] + [4, 100, 999, -1, -1, -1, -1, -1, 19, 1, 99, 10, -1, -1, -1].map { RESPValue.integer($0) })
        let decision = try QuotaDecision(reply: reply, plan: plan)
        XCTAssertEqual(decision, .admitted([
            LevelRemaining(node: try NodeID("contoso"), kind: .customer, rate: 4, rateResetMilliseconds: 100, day: 999, month: nil, concurrency: nil),
            LevelRemaining(node: try NodeID("northwind"), kind: .partner, rate: nil, rateResetMilliseconds: nil, day: nil, month: 19, concurrency: 1),
            LevelRemaining(node: try NodeID("acme"), kind: .oem, rate: 99, rateResetMilliseconds: 10, day: nil, month: nil, concurrency: nil),
        ]))
    }

    func testParsesRefusals() throws {
        let plan = try QuotaPlan(levels: threeLevels(), oem: try NodeID("acme"), cost: 1, now: start)
        func refusal(_ index: Int64, _ kind: String, _ retry: Int64, _ limit: Int64, _ remaining: Int64, _ reset: Int64) -> RESPValue {
            .array([.integer(0), .integer(index), .bulkString(Array(kind.utf8)), .integer(retry), .integer(limit), .integer(remaining), .integer(reset)])
        }
        XCTAssertEqual(
            try QuotaDecision(reply: refusal(3, "rate", 10, 100, 0, 1_000_000), plan: plan),
            .refused(level: try NodeID("acme"), kind: .rate, retryAfterMilliseconds: 10, limit: 100, remaining: 0, resetAfterMicroseconds: 1_000_000)
        )
        XCTAssertEqual(
            try QuotaDecision(reply: refusal(2, "concurrency", 0, 2, 0, -1), plan: plan),
            .refused(level: try NodeID("northwind"), kind: .concurrency, retryAfterMilliseconds: 0, limit: 2, remaining: 0, resetAfterMicroseconds: nil)
        )
        XCTAssertEqual(
            try QuotaDecision(reply: refusal(1, "day", -1, 1000, 7, 3_600_000_000), plan: plan),
            .refused(level: try NodeID("contoso"), kind: .day, retryAfterMilliseconds: nil, limit: 1000, remaining: 7, resetAfterMicroseconds: 3_600_000_000)
        )
    }

    func testRejectsMalformedReplies() throws {
        let plan = try QuotaPlan(levels: threeLevels(), oem: try NodeID("acme"), cost: 1, now: start)
        let bad: [RESPValue] = [
            .integer(1), .array([]), .array([.integer(2)]), .array([.integer(1), .integer(3)]),
            .array([.integer(0), .integer(4), .bulkString(Array("rate".utf8)), .integer(1), .integer(1), .integer(0), .integer(1)]),
            .array([.integer(0), .integer(1), .bulkString(Array("hourly".utf8)), .integer(1), .integer(1), .integer(0), .integer(1)]),
            // The layout before refusals told what was left: nothing to judge a later cost by.
            .array([.integer(0), .integer(1), .bulkString(Array("day".utf8)), .integer(1), .integer(1)]),
            .array([.integer(0), .integer(1), .bulkString(Array("day".utf8)), .integer(1), .integer(1), .integer(-1), .integer(1)]),
        ]
        for reply in bad {
            XCTAssertThrowsError(try QuotaDecision(reply: reply, plan: plan)) { XCTAssertEqual($0 as? QuotaReplyError, .malformed) }
        }
        XCTAssertThrowsError(try QuotaDecision(reply: .error("ERR boom"), plan: plan)) { XCTAssertEqual($0 as? QuotaReplyError, .scriptError) }
    }

    // MARK: - Headers

    func testRefusalHeadersNameTheLevelAndRoundRetryAfterUp() throws {
        let plan = try QuotaPlan(levels: threeLevels(), oem: try NodeID("acme"), cost: 1, now: start)
        let month = QuotaDecision.refused(
            level: try NodeID("northwind"), kind: .month, retryAfterMilliseconds: 1_001, limit: 20, remaining: 3, resetAfterMicroseconds: 1_001_000
        )
        // `r` is what the refusing limit has left: 3 units, fewer than this request needed.
        assertFields(RateLimitHeaders.fields(for: month, plan: plan), [
            ("RateLimit-Policy", "\"partner-month\";q=20;w=2592000"),
            ("RateLimit", "\"partner-month\";r=3;t=2"),
            ("Retry-After", "2"),
        ])
        let rate = QuotaDecision.refused(level: try NodeID("contoso"), kind: .rate, retryAfterMilliseconds: 100, limit: 5, remaining: 0, resetAfterMicroseconds: 500_000)
        assertFields(RateLimitHeaders.fields(for: rate, plan: plan), [
            ("RateLimit-Policy", "\"customer-rate\";q=5;w=1"),
            ("RateLimit", "\"customer-rate\";r=0;t=1"),
            ("Retry-After", "1"),
        ])
        let concurrency = QuotaDecision.refused(
            level: try NodeID("northwind"), kind: .concurrency, retryAfterMilliseconds: 0, limit: 2, remaining: 0, resetAfterMicroseconds: nil
        )
        assertFields(RateLimitHeaders.fields(for: concurrency, plan: plan), [
            ("RateLimit-Policy", "\"partner-concurrency\";q=2"),
            ("RateLimit", "\"partner-concurrency\";r=0"),
            ("Retry-After", "1"),
        ])
        let never = QuotaDecision.refused(
            level: try NodeID("contoso"), kind: .day, retryAfterMilliseconds: nil, limit: 1000, remaining: 1000, resetAfterMicroseconds: 3_600_000_000
        )
        assertFields(RateLimitHeaders.fields(for: never, plan: plan), [
            ("RateLimit-Policy", "\"customer-day\";q=1000;w=86400"),
            ("RateLimit", "\"customer-day\";r=1000"),
        ])
    }

    func testAdmissionHeadersNameTheTightestLevel() throws {
        let plan = try QuotaPlan(levels: threeLevels(), oem: try NodeID("acme"), cost: 1, now: start)
        let contoso = try NodeID("contoso"), northwind = try NodeID("northwind"), acme = try NodeID("acme")
        let decision = QuotaDecision.admitted([
            LevelRemaining(node: contoso, kind: .customer, rate: 4, rateResetMilliseconds: 100, day: 999, month: nil, concurrency: nil),
            LevelRemaining(node: northwind, kind: .partner, rate: nil, rateResetMilliseconds: nil, day: nil, month: 3, concurrency: 0),
            LevelRemaining(node: acme, kind: .oem, rate: 99, rateResetMilliseconds: 10, day: nil, month: nil, concurrency: nil),
        ])
        // The partner's month (3 left) is tighter than the customer's burst (4); concurrency is not a RateLimit policy.
        assertFields(RateLimitHeaders.fields(for: decision, plan: plan), [
            ("RateLimit-Policy", "\"partner-month\";q=20;w=2592000"),
            ("RateLimit", "\"partner-month\";r=3;t=\(8 * 3_600 + 6 * 86_400)"),
        ])
        let unlimited = try QuotaPlan(levels: [], oem: acme, cost: 1, now: start)
        XCTAssertTrue(RateLimitHeaders.fields(for: .admitted([]), plan: unlimited).isEmpty)
    }

    // MARK: - Helpers

    private func assertFields(_ actual: [(name: String, value: String)], _ expected: [(String, String)], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.map { "\($0.name): \($0.value)" }, expected.map { "\($0.0): \($0.1)" }, file: file, line: line)
    }
}

/// customer contoso: 10/s burst 5, 1000/day; partner northwind: 20/month, 2 in flight;
/// OEM acme: 100/s (burst defaults to the rate).
func threeLevels() throws -> [LevelLimits] {
    [
        LevelLimits(node: try NodeID("contoso"), kind: .customer, limits: Limits(ratePerSecond: 10, burst: 5, perDay: 1000)),
        LevelLimits(node: try NodeID("northwind"), kind: .partner, limits: Limits(perMonth: 20, concurrency: 2)),
        LevelLimits(node: try NodeID("acme"), kind: .oem, limits: Limits(ratePerSecond: 100)),
    ]
}
