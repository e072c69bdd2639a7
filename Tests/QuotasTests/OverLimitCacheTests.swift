@testable import Hierarchy
import XCTest
@testable import Quotas

/// The over-limit memory as values, with explicit instants: it refuses a request of a given
/// cost only while Redis is certain to refuse it, per limit kind.
final class OverLimitCacheTests: XCTestCase {
    private let customer = try! NodeID("contoso")
    private let partner = try! NodeID("northwind")
    private let oem = try! NodeID("acme")
    /// 2025-11-24T16:00:00Z: 8 h to the end of the UTC day, 6 days and 8 h to the end of the month.
    private let start: Int64 = 1_764_000_000_000_000
    private let untilMidnight: Int64 = 8 * 3_600_000_000
    private let untilMonthEnd: Int64 = (6 * 24 + 8) * 3_600_000_000

    /// customer: 1 per second, burst 6; partner: 12 per day, 5 in flight; OEM: 100 per month.
    private var levels: [LevelLimits] {
        [
            LevelLimits(node: self.customer, kind: .customer, limits: Limits(ratePerSecond: 1, burst: 6)),
            LevelLimits(node: self.partner, kind: .partner, limits: Limits(perDay: 12, concurrency: 5)),
            LevelLimits(node: self.oem, kind: .oem, limits: Limits(perMonth: 100)),
        ]
    }

    private func plan(cost: Int, now: Int64, levels: [LevelLimits]? = nil) throws -> QuotaPlan {
        try QuotaPlan(levels: levels ?? self.levels, oem: self.oem, cost: cost, now: now)
    }

    private func refused(
        _ node: NodeID, _ kind: QuotaKind, retry: Int64?, limit: Int, remaining: Int, reset: Int64?
    ) -> QuotaDecision {
        .refused(level: node, kind: kind, retryAfterMilliseconds: retry, limit: limit, remaining: remaining, resetAfterMicroseconds: reset)
    }

    private func judged(_ cache: OverLimitCache, cost: Int, at now: Int64, levels: [LevelLimits]? = nil) -> QuotaDecision? {
        cache.remembered(levels: levels ?? self.levels, cost: cost, now: now)?.decision
    }

    private func retryAfter(_ decision: QuotaDecision?) -> Int64? {
        guard case .refused(_, _, let retryAfter, _, _, _) = decision else { return nil }
        return retryAfter
    }

    // MARK: - Calendar quotas

    func testADayRefusalRefusesOnlyCostsAboveWhatWasLeftUntilMidnight() throws {
        var cache = OverLimitCache()
        // 10 of the partner's 12 are used: a request of cost 5 is refused with 2 left.
        cache.record(self.refused(self.partner, .day, retry: 8 * 3_600_000, limit: 12, remaining: 2, reset: self.untilMidnight), plan: try self.plan(cost: 5, now: self.start))
        let later = self.start + 1_000_000
        let dayRefusal = self.refused(self.partner, .day, retry: 8 * 3_600_000 - 1_000, limit: 12, remaining: 2, reset: self.untilMidnight - 1_000_000)
        XCTAssertEqual(self.judged(cache, cost: 5, at: later), dayRefusal)
        XCTAssertEqual(self.judged(cache, cost: 3, at: later), dayRefusal)
        XCTAssertNil(self.judged(cache, cost: 2, at: later), "2 units were left: Redis may admit it")
        XCTAssertNil(self.judged(cache, cost: 1, at: later))
        XCTAssertNil(self.judged(cache, cost: 5, at: self.start + self.untilMidnight), "a new day starts afresh")
        XCTAssertNil(self.judged(cache, cost: 13, at: later), "above the quota itself: Redis says never, not until midnight")
    }

    func testFewerUnitsLeftLaterInTheDayTightenTheMemoryAndAnOlderDayIsIgnored() throws {
        var cache = OverLimitCache()
        cache.record(self.refused(self.partner, .day, retry: 8 * 3_600_000, limit: 12, remaining: 2, reset: self.untilMidnight), plan: try self.plan(cost: 5, now: self.start))
        // Another loop or node took the last 2; this loop learns it from its next refusal.
        cache.record(self.refused(self.partner, .day, retry: 8 * 3_600_000, limit: 12, remaining: 0, reset: self.untilMidnight), plan: try self.plan(cost: 1, now: self.start))
        // A late answer from the day before, with units left then, changes nothing.
        let yesterday = self.start - 86_400_000_000
        cache.record(self.refused(self.partner, .day, retry: 8 * 3_600_000, limit: 12, remaining: 4, reset: self.untilMidnight), plan: try self.plan(cost: 5, now: yesterday))
        // A refusal with more left in the same day (an older reading) does not loosen it.
        cache.record(self.refused(self.partner, .day, retry: 8 * 3_600_000, limit: 12, remaining: 2, reset: self.untilMidnight), plan: try self.plan(cost: 5, now: self.start))
        XCTAssertEqual(
            self.judged(cache, cost: 1, at: self.start),
            self.refused(self.partner, .day, retry: 8 * 3_600_000, limit: 12, remaining: 0, reset: self.untilMidnight)
        )
        XCTAssertEqual(cache.count, 1)
    }

    func testAMonthRefusalLastsUntilTheMonthEndsAndTheLongestWaitIsReported() throws {
        var cache = OverLimitCache()
        let plan = try self.plan(cost: 5, now: self.start)
        cache.record(self.refused(self.oem, .month, retry: self.untilMonthEnd / 1000, limit: 100, remaining: 3, reset: self.untilMonthEnd), plan: plan)
        cache.record(self.refused(self.partner, .day, retry: self.untilMidnight / 1000, limit: 12, remaining: 1, reset: self.untilMidnight), plan: plan)
        let month = self.refused(self.oem, .month, retry: self.untilMonthEnd / 1000, limit: 100, remaining: 3, reset: self.untilMonthEnd)
        XCTAssertEqual(self.judged(cache, cost: 4, at: self.start), month, "both refuse; the month's wait is the longer")
        XCTAssertEqual(
            self.judged(cache, cost: 2, at: self.start),
            self.refused(self.partner, .day, retry: self.untilMidnight / 1000, limit: 12, remaining: 1, reset: self.untilMidnight),
            "3 left in the month, 1 in the day"
        )
        XCTAssertNil(self.judged(cache, cost: 1, at: self.start))
        let tomorrow = self.start + self.untilMidnight
        XCTAssertEqual(self.retryAfter(self.judged(cache, cost: 4, at: tomorrow)), (self.untilMonthEnd - self.untilMidnight) / 1000)
        XCTAssertNil(self.judged(cache, cost: 4, at: self.start + self.untilMonthEnd))
    }

    // MARK: - Rate

    func testARateRefusalRefusesEachCostUntilThatCostFits() throws {
        var cache = OverLimitCache()
        // 1 per second, burst 6: an admitted request of cost 5 booked the limit 5 s ahead, so
        // another of cost 5 fits in 4 s, one of cost 2 in 1 s, one of cost 1 at once.
        let booked: Int64 = 5_000_000
        cache.record(self.refused(self.customer, .rate, retry: 4_000, limit: 6, remaining: 1, reset: booked), plan: try self.plan(cost: 5, now: self.start))
        XCTAssertNil(self.judged(cache, cost: 1, at: self.start), "a unit request fits now")
        XCTAssertEqual(self.judged(cache, cost: 2, at: self.start), self.refused(self.customer, .rate, retry: 1_000, limit: 6, remaining: 1, reset: booked))
        XCTAssertNil(self.judged(cache, cost: 2, at: self.start + 1_000_000))
        XCTAssertEqual(self.judged(cache, cost: 5, at: self.start), self.refused(self.customer, .rate, retry: 4_000, limit: 6, remaining: 1, reset: booked))
        XCTAssertEqual(
            self.judged(cache, cost: 5, at: self.start + 3_999_999),
            self.refused(self.customer, .rate, retry: 1, limit: 6, remaining: 4, reset: 1_000_001),
            "the retry time rounds up to whole milliseconds; r counts what is left at that moment"
        )
        XCTAssertNil(self.judged(cache, cost: 5, at: self.start + 4_000_000), "clear exactly when cost 5 fits")
        XCTAssertEqual(self.retryAfter(self.judged(cache, cost: 6, at: self.start + 4_000_000)), 1_000)
        XCTAssertNil(self.judged(cache, cost: 6, at: self.start + booked), "idle: even the whole burst fits")
        XCTAssertNil(self.judged(cache, cost: 7, at: self.start), "above the burst: Redis says never, not later")
    }

    func testALaterRateReadingReplacesAnEarlierOne() throws {
        var cache = OverLimitCache()
        cache.record(self.refused(self.customer, .rate, retry: 4_000, limit: 6, remaining: 1, reset: 5_000_000), plan: try self.plan(cost: 5, now: self.start))
        // The unit request that fitted was admitted elsewhere: the limit is now booked 6 s ahead.
        cache.record(self.refused(self.customer, .rate, retry: 1_000, limit: 6, remaining: 0, reset: 6_000_000), plan: try self.plan(cost: 1, now: self.start))
        cache.record(self.refused(self.customer, .rate, retry: 4_000, limit: 6, remaining: 1, reset: 5_000_000), plan: try self.plan(cost: 5, now: self.start))
        XCTAssertEqual(self.judged(cache, cost: 1, at: self.start), self.refused(self.customer, .rate, retry: 1_000, limit: 6, remaining: 0, reset: 6_000_000))
    }

    // MARK: - What is not remembered

    func testConcurrencyAndNeverClearingRefusalsAreNotRemembered() throws {
        var cache = OverLimitCache()
        let plan = try self.plan(cost: 1, now: self.start)
        cache.record(self.refused(self.partner, .concurrency, retry: 0, limit: 5, remaining: 0, reset: nil), plan: plan)
        cache.record(self.refused(self.customer, .rate, retry: nil, limit: 6, remaining: 6, reset: 0), plan: try self.plan(cost: 7, now: self.start))
        cache.record(self.refused(self.partner, .day, retry: nil, limit: 12, remaining: 12, reset: self.untilMidnight), plan: try self.plan(cost: 13, now: self.start))
        XCTAssertNil(cache.remembered(levels: self.levels, cost: 1, now: self.start))
        XCTAssertEqual(cache.count, 0)
    }

    func testARefusalUnderOtherLimitsTellsNothing() throws {
        var cache = OverLimitCache()
        cache.record(self.refused(self.partner, .day, retry: self.untilMidnight / 1000, limit: 12, remaining: 0, reset: self.untilMidnight), plan: try self.plan(cost: 1, now: self.start))
        var raised = self.levels
        raised[1] = LevelLimits(node: self.partner, kind: .partner, limits: Limits(perDay: 50, concurrency: 5))
        XCTAssertNotNil(self.judged(cache, cost: 1, at: self.start))
        XCTAssertNil(self.judged(cache, cost: 1, at: self.start, levels: raised), "the quota was raised since")
        XCTAssertNil(self.judged(cache, cost: 1, at: self.start, levels: [self.levels[0]]), "only the refused node is remembered")
    }

    func testTheCacheIsBounded() throws {
        var cache = OverLimitCache(capacity: 2)
        let plan = try self.plan(cost: 1, now: self.start)
        cache.record(self.refused(self.customer, .rate, retry: 1_000, limit: 6, remaining: 0, reset: 6_000_000), plan: plan)
        cache.record(self.refused(self.partner, .day, retry: self.untilMidnight / 1000, limit: 12, remaining: 0, reset: self.untilMidnight), plan: plan)
        cache.record(self.refused(self.oem, .month, retry: self.untilMonthEnd / 1000, limit: 100, remaining: 0, reset: self.untilMonthEnd), plan: plan)
        XCTAssertLessThanOrEqual(cache.count, 2)
        // Expired entries make room first: the customer's rate is idle 6 s later.
        var later = OverLimitCache(capacity: 2)
        later.record(self.refused(self.customer, .rate, retry: 1_000, limit: 6, remaining: 0, reset: 6_000_000), plan: plan)
        later.record(self.refused(self.partner, .day, retry: self.untilMidnight / 1000, limit: 12, remaining: 0, reset: self.untilMidnight), plan: plan)
        later.record(self.refused(self.oem, .month, retry: 1_000, limit: 100, remaining: 0, reset: 1_000_000), plan: try self.plan(cost: 1, now: self.start + 6_000_000))
        XCTAssertEqual(later.count, 2)
        XCTAssertNotNil(self.judged(later, cost: 1, at: self.start + 6_000_000), "the partner's day is still remembered")
    }

    // MARK: - Headers

    func testARememberedAnswerCarriesTheHeadersRedisWouldSend() throws {
        var cache = OverLimitCache()
        let first = try self.plan(cost: 5, now: self.start)
        cache.record(self.refused(self.partner, .day, retry: self.untilMidnight / 1000, limit: 12, remaining: 2, reset: self.untilMidnight), plan: first)
        cache.record(self.refused(self.customer, .rate, retry: 4_000, limit: 6, remaining: 1, reset: 5_000_000), plan: first)
        for (cost, now) in [(5, self.start + 250_000), (3, self.start + 3_600_000_000), (2, self.start + 10)] {
            let remembered = try XCTUnwrap(cache.remembered(levels: self.levels, cost: cost, now: now))
            // What Redis answers for the same request at the same instant, as far as the memory knows it.
            let expected = RateLimitHeaders.fields(for: remembered.decision, plan: try self.plan(cost: cost, now: now))
            XCTAssertEqual(remembered.fields.map { "\($0.name): \($0.value)" }, expected.map { "\($0.name): \($0.value)" })
        }
        let remembered = try XCTUnwrap(cache.remembered(levels: self.levels, cost: 5, now: self.start + 250_000))
        XCTAssertEqual(remembered.fields.map { "\($0.name): \($0.value)" }, [
            "RateLimit-Policy: \"partner-day\";q=12;w=86400",
            "RateLimit: \"partner-day\";r=2;t=28800",
            "Retry-After: 28800",
        ], "Retry-After counts to UTC midnight; r is what was left, not 0")
    }
}
