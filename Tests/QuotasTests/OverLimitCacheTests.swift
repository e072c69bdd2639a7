@testable import Hierarchy
import XCTest
@testable import Quotas

final class OverLimitCacheTests: XCTestCase {
    private let customer = try! NodeID("contoso")
    private let partner = try! NodeID("northwind")
    private let oem = try! NodeID("acme")

    private func plan(now: Int64) throws -> QuotaPlan {
        try QuotaPlan(
            levels: [
                LevelLimits(node: self.customer, kind: .customer, limits: Limits(ratePerSecond: 10)),
                LevelLimits(node: self.partner, kind: .partner, limits: Limits(perDay: 100, concurrency: 5)),
            ],
            oem: self.oem, cost: 1, now: now
        )
    }

    func testARefusalIsRememberedUntilItsRetryTime() throws {
        var cache = OverLimitCache()
        let start: Int64 = 1_800_000_000_000_000
        let first = try self.plan(now: start)
        XCTAssertNil(cache.refusal(for: first))
        cache.record(.refused(level: self.partner, kind: .day, retryAfterMilliseconds: 2_500, limit: 100), plan: first)
        let later = try self.plan(now: start + 1_000_000)
        XCTAssertEqual(cache.refusal(for: later), .refused(level: self.partner, kind: .day, retryAfterMilliseconds: 1_500, limit: 100))
        XCTAssertNil(cache.refusal(for: try self.plan(now: start + 2_500_000)), "clear exactly at the retry time")
    }

    func testConcurrencyAndNeverClearingRefusalsAreNotRemembered() throws {
        var cache = OverLimitCache()
        let plan = try self.plan(now: 1_000_000)
        cache.record(.refused(level: self.partner, kind: .concurrency, retryAfterMilliseconds: 0, limit: 5), plan: plan)
        cache.record(.refused(level: self.customer, kind: .rate, retryAfterMilliseconds: nil, limit: 10), plan: plan)
        XCTAssertNil(cache.refusal(for: plan))
        XCTAssertEqual(cache.count, 0)
    }

    func testTheLongestRefusalWinsAndTheCacheIsBounded() throws {
        var cache = OverLimitCache(capacity: 2)
        let plan = try self.plan(now: 0)
        cache.record(.refused(level: self.customer, kind: .rate, retryAfterMilliseconds: 100, limit: 10), plan: plan)
        cache.record(.refused(level: self.partner, kind: .day, retryAfterMilliseconds: 5_000, limit: 100), plan: plan)
        XCTAssertEqual(cache.refusal(for: plan), .refused(level: self.partner, kind: .day, retryAfterMilliseconds: 5_000, limit: 100))
        cache.record(.refused(level: self.oem, kind: .month, retryAfterMilliseconds: 1, limit: 1), plan: plan)
        XCTAssertLessThanOrEqual(cache.count, 2)
    }

    func testARememberedAnswerCarriesTheSameHeadersAsRedissOwn() throws {
        var cache = OverLimitCache()
        let plan = try self.plan(now: 5_000_000)
        let refusal = QuotaDecision.refused(level: self.partner, kind: .day, retryAfterMilliseconds: 2_500, limit: 100)
        cache.record(refusal, plan: plan)
        let remembered = try XCTUnwrap(cache.remembered(nodes: [self.customer, self.partner], now: plan.now))
        XCTAssertEqual(remembered.decision, refusal)
        let expected = RateLimitHeaders.fields(for: refusal, plan: plan)
        XCTAssertEqual(remembered.fields.map(\.name), expected.map(\.name))
        XCTAssertEqual(remembered.fields.map(\.value), expected.map(\.value))
        XCTAssertNil(cache.remembered(nodes: [self.customer], now: plan.now), "only the refused node is remembered")
    }
}
