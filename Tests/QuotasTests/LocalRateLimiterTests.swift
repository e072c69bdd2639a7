@testable import Hierarchy
import XCTest
@testable import Quotas

final class LocalRateLimiterTests: XCTestCase {
    func testEveryLevelIsChargedOrNone() throws {
        let customer = try NodeID("contoso")
        let partner = try NodeID("northwind")
        func plan(_ now: Int64) throws -> QuotaPlan {
            try QuotaPlan(
                levels: [
                    LevelLimits(node: customer, kind: .customer, limits: Limits(ratePerSecond: 10, burst: 3)),
                    LevelLimits(node: partner, kind: .partner, limits: Limits(ratePerSecond: 1, burst: 2, perDay: 5)),
                ],
                oem: try NodeID("acme"), cost: 1, now: now
            )
        }
        var limiter = LocalRateLimiter()
        let start: Int64 = 1_000_000_000
        XCTAssertEqual(limiter.admit(try plan(start)), .admitted([]))
        XCTAssertEqual(limiter.admit(try plan(start)), .admitted([]))
        // The partner's burst of 2 binds first; the customer's third slot is not consumed.
        XCTAssertEqual(
            limiter.admit(try plan(start)),
            .refused(level: partner, kind: .rate, retryAfterMilliseconds: 1000, limit: 2, remaining: 0, resetAfterMicroseconds: 2_000_000)
        )
        XCTAssertEqual(limiter.admit(try plan(start + 1_000_000)), .admitted([]), "one partner slot back after a second")
    }
}
