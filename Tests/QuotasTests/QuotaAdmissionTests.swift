@testable import Hierarchy
import RedisTestServer
import NIOCore
import NIOPosix
import Quotas
import RedisClient
import XCTest

/// The admission script against a real redis-server, with injected `now` (no sleeps).
final class QuotaAdmissionTests: RedisQuotaTestCase {
    func testScriptSHAIsRedisOwn() throws {
        XCTAssertEqual(try self.redis.send(on: self.loop, ["SCRIPT", "LOAD", QuotaScript.admit]).wait().string, QuotaScript.admitSHA)
        XCTAssertEqual(try self.redis.send(on: self.loop, ["SCRIPT", "LOAD", QuotaScript.release]).wait().string, QuotaScript.releaseSHA)
    }

    func testBurstIsAdmittedExactlyThenRefused() throws {
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 10, burst: 5))]
        for expected in [4, 3, 2, 1, 0] {
            XCTAssertEqual(try admit(levels, now: start), .admitted([
                LevelRemaining(node: contoso, kind: .customer, rate: expected, rateResetMilliseconds: Int64(5 - expected) * 100, day: nil, month: nil, concurrency: nil),
            ]))
        }
        XCTAssertEqual(
            try admit(levels, now: start),
            .refused(level: contoso, kind: .rate, retryAfterMilliseconds: 100, limit: 5, remaining: 0, resetAfterMicroseconds: 500_000)
        )
        // The refusal tells, to the microsecond, how far the limit is booked ahead.
        XCTAssertEqual(
            try admit(levels, now: start + 99_999),
            .refused(level: contoso, kind: .rate, retryAfterMilliseconds: 1, limit: 5, remaining: 0, resetAfterMicroseconds: 400_001)
        )
        XCTAssertEqual(try get("erp:q:{acme}:contoso:rate"), start + 500_000, "refusals consume nothing")
        guard case .admitted = try admit(levels, now: start + 100_000) else { return XCTFail("not admitted after one interval") }
        XCTAssertEqual(try get("erp:q:{acme}:contoso:rate"), start + 600_000)
    }

    func testRefusalAtTheOEMLevelChargesNoOtherLevel() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 100, concurrency: 5)),
            LevelLimits(node: northwind, kind: .partner, limits: Limits(ratePerSecond: 10, burst: 10, perMonth: 1000)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(perDay: 2)),
        ]
        for _ in 0..<2 {
            guard case .admitted = try admit(levels, now: start) else { return XCTFail("refused under every limit") }
        }
        let snapshot = try storedValues()
        XCTAssertEqual(snapshot, [2, 2, start + 200_000, 2, 2])
        for _ in 0..<3 {
            XCTAssertEqual(
                try admit(levels, now: start),
                .refused(level: acme, kind: .day, retryAfterMilliseconds: 8 * 3_600_000, limit: 2, remaining: 0, resetAfterMicroseconds: 8 * 3_600_000_000)
            )
        }
        XCTAssertEqual(try storedValues(), snapshot, "a refused request changed a counter")
    }

    func testCostAboveOneChargesEveryLevelThatMuch() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 10, burst: 10, perDay: 10)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(perMonth: 100)),
        ]
        XCTAssertEqual(try admit(levels, cost: 4, now: start), .admitted([
            LevelRemaining(node: contoso, kind: .customer, rate: 6, rateResetMilliseconds: 400, day: 6, month: nil, concurrency: nil),
            LevelRemaining(node: acme, kind: .oem, rate: nil, rateResetMilliseconds: nil, day: nil, month: 96, concurrency: nil),
        ]))
        guard case .admitted = try admit(levels, cost: 4, now: start) else { return XCTFail() }
        // Both the burst (2 left) and the day (2 left) refuse cost 4: the longer wait is reported,
        // with the 2 units left, which a request of cost 2 still fits.
        XCTAssertEqual(
            try admit(levels, cost: 4, now: start),
            .refused(level: contoso, kind: .day, retryAfterMilliseconds: 8 * 3_600_000, limit: 10, remaining: 2, resetAfterMicroseconds: 8 * 3_600_000_000)
        )
        guard case .admitted(let left) = try admit(levels, cost: 2, now: start) else { return XCTFail() }
        XCTAssertEqual(left.map(\.day), [0, nil])
        XCTAssertEqual(left.map(\.month), [nil, 90])
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 10)
        XCTAssertEqual(try get("erp:q:{acme}:acme:month:202511"), 10)
        // A cost above the burst (and the day) can never pass: no retry time; the first such check is named.
        XCTAssertEqual(
            try admit(levels, cost: 11, now: start + 3_600_000_000),
            .refused(level: contoso, kind: .rate, retryAfterMilliseconds: nil, limit: 10, remaining: 10, resetAfterMicroseconds: 0)
        )
    }

    func testDayQuotaIsExactAndStartsAfreshAtUTCMidnight() throws {
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 3))]
        let midnight = start + 8 * 3_600_000_000
        for expected in [2, 1, 0] {
            guard case .admitted(let left) = try admit(levels, now: start), left.first?.day == expected else { return XCTFail("\(expected)") }
        }
        XCTAssertEqual(
            try admit(levels, now: midnight - 1_000),
            .refused(level: contoso, kind: .day, retryAfterMilliseconds: 1, limit: 3, remaining: 0, resetAfterMicroseconds: 1_000)
        )
        guard case .admitted(let left) = try admit(levels, now: midnight), left.first?.day == 2 else { return XCTFail("new day") }
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 3)
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251125"), 1)
        let ttl = try self.redis.send(on: self.loop, ["TTL", "erp:q:{acme}:contoso:day:20251125"]).wait().int64 ?? -1
        XCTAssertGreaterThan(ttl, 86_400, "the key outlives its day by the margin")
        XCTAssertLessThanOrEqual(ttl, 86_400 + QuotaPlan.calendarMargin)
    }

    func testMonthQuotaSpansDaysAndEndsWithTheMonth() throws {
        let levels = [LevelLimits(node: northwind, kind: .partner, limits: Limits(perMonth: 3))]
        let leapDay: Int64 = 1_709_164_800_000_000 // 2024-02-29T00:00:00Z, the month's last day
        let march = leapDay + 86_400_000_000
        for now in [leapDay - 2 * 86_400_000_000, leapDay - 86_400_000_000, leapDay] {
            guard case .admitted = try admit(levels, now: now) else { return XCTFail("\(now)") }
        }
        XCTAssertEqual(
            try admit(levels, now: leapDay + 1_000),
            .refused(level: northwind, kind: .month, retryAfterMilliseconds: 86_400_000 - 1, limit: 3, remaining: 0, resetAfterMicroseconds: 86_400_000_000 - 1_000)
        )
        guard case .admitted(let left) = try admit(levels, now: march), left.first?.month == 2 else { return XCTFail("March") }
        XCTAssertEqual(try get("erp:q:{acme}:northwind:month:202402"), 3)
        XCTAssertEqual(try get("erp:q:{acme}:northwind:month:202403"), 1)
    }

    func testConcurrencyIsFreedByReleaseAndNeverGoesNegative() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(concurrency: 2)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(perDay: 1000)),
        ]
        let key = "erp:q:{acme}:contoso:inflight"
        let (first, _) = try self.quotas.admit(levels: levels, oem: acme, cost: 1, now: start, on: loop).wait()
        guard case .admitted = try admit(levels, now: start) else { return XCTFail() }
        XCTAssertEqual(
            try admit(levels, now: start),
            .refused(level: contoso, kind: .concurrency, retryAfterMilliseconds: 0, limit: 2, remaining: 0, resetAfterMicroseconds: nil)
        )
        XCTAssertEqual(try get(key), 2)
        XCTAssertEqual(try get("erp:q:{acme}:acme:day:20251124"), 2, "the refusal charged the OEM's day")

        try self.quotas.release(first, on: loop).wait()
        XCTAssertEqual(try get(key), 1)
        guard case .admitted(let left) = try admit(levels, now: start), left.first?.concurrency == 0 else { return XCTFail() }
        for _ in 0..<4 { try self.quotas.release(first, on: loop).wait() }
        XCTAssertNil(try get(key), "released below zero")
        guard case .admitted(let again) = try admit(levels, now: start), again.first?.concurrency == 1 else { return XCTFail() }
    }

    /// Two clients stand in for two gateway nodes, each on its own event loop and connection.
    func testExactlyNOf3NConcurrentAdmissionsFromTwoNodes() throws {
        let quota = 200
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: quota)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(ratePerSecond: 1, burst: quota)),
        ]
        let otherGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let otherRedis = RedisClient(url: self.redis.url, group: otherGroup)
        defer {
            try? otherRedis.shutdown().wait()
            try? otherGroup.syncShutdownGracefully()
        }
        let nodes = [(self.quotas!, self.group.next()), (QuotaAdmission(redis: otherRedis), otherGroup.next())]
        let futures = (0..<(3 * quota)).map { index in
            let (node, loop) = nodes[index % 2]
            return node.admit(levels: levels, oem: acme, cost: 1, now: start + Int64(index % 7), on: loop).map(\.1)
        }
        let decisions = try futures.map { try $0.wait() }
        let admitted = decisions.filter { if case .admitted = $0 { true } else { false } }.count
        XCTAssertEqual(admitted, quota)
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), Int64(quota))
    }

    /// Two over-limit memories stand in for two event loops sharing one Redis. Whatever each
    /// has seen, a refusal it gives is one Redis gives at the same instant (Redis is asked too:
    /// a refusal charges nothing), never sooner cleared and never with more left; and what it
    /// does not refuse goes to Redis. Costs and instants vary over every limit kind.
    func testTheOverLimitMemoryOfEveryLoopOnlyRefusesWhatRedisRefuses() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 20, burst: 8, perDay: 150)),
            LevelLimits(node: northwind, kind: .partner, limits: Limits(ratePerSecond: 50, burst: 12, perMonth: 400)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(perDay: 300)),
        ]
        var loops = [OverLimitCache(), OverLimitCache()]
        // A fixed linear congruential sequence: every run replays the same requests.
        var state: UInt64 = 12
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        var now = start
        var remembered = 0
        var admitted = 0
        for index in 0..<1_500 {
            now += Int64(next() % 40_000)
            let cost = [1, 1, 1, 2, 3, 5, 8][Int(next() % 7)]
            let loop = index % 2
            let plan = try self.quotas.plan(levels: levels, oem: acme, cost: cost, now: now)
            let decision = try self.quotas.admit(plan, on: self.loop).wait()
            if let memory = loops[loop].remembered(levels: levels, cost: cost, now: now)?.decision {
                remembered += 1
                guard case .refused(let node, let kind, let retry?, _, let left, _) = memory,
                      case .refused(let redisNode, let redisKind, let redisRetry?, _, let redisLeft, _) = decision
                else { return XCTFail("request \(index), cost \(cost): memory \(memory), Redis \(decision)") }
                // Redis names the limit with the longest wait, which may be one this memory never saw refuse.
                XCTAssertLessThanOrEqual(retry, redisRetry, "request \(index): the memory would refuse longer than Redis")
                if node == redisNode, kind == redisKind {
                    XCTAssertGreaterThanOrEqual(left, redisLeft, "request \(index)")
                    if kind != .rate { XCTAssertEqual(retry, redisRetry, "request \(index): a calendar retry is the period's end") }
                }
            } else {
                if case .admitted = decision { admitted += 1 }
                loops[loop].record(decision, plan: plan)
            }
        }
        XCTAssertGreaterThan(remembered, 100, "the memories answered part of the load")
        XCTAssertGreaterThan(admitted, 100)
    }

    // MARK: - Helpers

    func testAdmissionMetersUsageInTheSameScript() throws {
        let metering = QuotaAdmission(redis: self.redis, usageRetentionDays: 30)
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 2))]
        func admit(cost: Int) throws -> QuotaDecision {
            let plan = try metering.plan(levels: levels, oem: acme, cost: cost, now: start, meter: contoso)
            return try metering.admit(plan, on: self.loop).wait()
        }
        // Only the admission script runs here: whatever the hash holds, it wrote.
        guard case .admitted = try admit(cost: 1) else { return XCTFail("refused under the limit") }
        guard case .refused = try admit(cost: 2) else { return XCTFail("admitted over the limit") }
        let key = "erp:usage:{acme}:contoso:20251124"
        XCTAssertEqual(try self.redis.send(on: self.loop, ["HGET", key, "requests"]).wait().string, "1")
        XCTAssertEqual(try self.redis.send(on: self.loop, ["HGET", key, "cost"]).wait().string, "1")
        XCTAssertEqual(try self.redis.send(on: self.loop, ["HGET", key, "refused"]).wait().string, "1")
        // Kept 30 days after its day ends (`start` is 16:00 UTC).
        let ttl = try XCTUnwrap(self.redis.send(on: self.loop, ["TTL", key]).wait().int64)
        XCTAssertEqual(ttl, 30 * 86_400 + 8 * 3_600, accuracy: 2)
    }

    func testWithoutRetentionNothingIsMetered() throws {
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 2))]
        let plan = try self.quotas.plan(levels: levels, oem: acme, cost: 1, now: start, meter: contoso)
        XCTAssertNil(plan.usageKey)
        guard case .admitted = try self.quotas.admit(plan, on: self.loop).wait() else { return XCTFail() }
        XCTAssertEqual(try self.redis.send(on: self.loop, ["EXISTS", "erp:usage:{acme}:contoso:20251124"]).wait().int64, 0)
    }

    private func admit(_ levels: [LevelLimits], cost: Int = 1, now: Int64) throws -> QuotaDecision {
        try self.quotas.admit(levels: levels, oem: acme, cost: cost, now: now, on: self.loop).wait().1
    }


    /// The counters of `testRefusalAtTheOEMLevelChargesNoOtherLevel`'s three levels.
    private func storedValues() throws -> [Int64?] {
        try [
            "erp:q:{acme}:contoso:day:20251124", "erp:q:{acme}:contoso:inflight",
            "erp:q:{acme}:northwind:rate", "erp:q:{acme}:northwind:month:202511",
            "erp:q:{acme}:acme:day:20251124",
        ].map(get)
    }
}

