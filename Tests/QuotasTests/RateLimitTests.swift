import XCTest
@testable import Quotas

final class RateLimitTests: XCTestCase {
    func testEmissionIntervalAndWindowForDividingRates() throws {
        let partner = try RateLimit(requests: 500, per: .seconds(1), burst: 1000)
        XCTAssertEqual(partner.period, 1_000_000)
        XCTAssertEqual(partner.emissionInterval, 2_000)
        XCTAssertEqual(partner.window, 2_000_000)

        let perMinute = try RateLimit(requests: 1000, per: .seconds(60), burst: 10)
        XCTAssertEqual(perMinute.emissionInterval, 60_000)
        XCTAssertEqual(perMinute.window, 600_000)

        let perMillisecond = try RateLimit(requests: 1, per: .milliseconds(1), burst: 1)
        XCTAssertEqual(perMillisecond.emissionInterval, 1_000)
        XCTAssertEqual(perMillisecond.window, 1_000)
    }

    func testEmissionIntervalRoundsUpSoTheRateIsNeverExceeded() throws {
        let three = try RateLimit(requests: 3, per: .seconds(1), burst: 1)
        XCTAssertEqual(three.emissionInterval, 333_334)
        XCTAssertLessThanOrEqual(three.emissionInterval * 3, 1_000_002)
        XCTAssertGreaterThanOrEqual(three.emissionInterval * 3, 1_000_000)

        for requests in [1, 3, 7, 999, 65_537, 999_999, 1_000_000] {
            let limit = try RateLimit(requests: requests, per: .seconds(1), burst: 1)
            XCTAssertGreaterThanOrEqual(limit.emissionInterval * Int64(requests), 1_000_000, "\(requests)")
            XCTAssertLessThan((limit.emissionInterval - 1) * Int64(requests), 1_000_000, "\(requests)")
        }
    }

    func testDurationAndMicrosecondInitializersAgree() throws {
        XCTAssertEqual(
            try RateLimit(requests: 30, per: .milliseconds(1500), burst: 5),
            try RateLimit(requests: 30, periodMicroseconds: 1_500_000, burst: 5)
        )
        XCTAssertEqual(try RateLimit(requests: 2, per: .microseconds(3), burst: 1).emissionInterval, 2)
    }

    func testRejectsUnusableLimits() {
        assertRejects(.requestsNotPositive) { try RateLimit(requests: 0, per: .seconds(1), burst: 1) }
        assertRejects(.requestsNotPositive) { try RateLimit(requests: -5, per: .seconds(1), burst: 1) }
        assertRejects(.burstNotPositive) { try RateLimit(requests: 5, per: .seconds(1), burst: 0) }
        assertRejects(.burstNotPositive) { try RateLimit(requests: 5, per: .seconds(1), burst: -1) }
        assertRejects(.periodNotWholeMicroseconds) { try RateLimit(requests: 1, per: .zero, burst: 1) }
        assertRejects(.periodNotWholeMicroseconds) { try RateLimit(requests: 1, per: .seconds(-1), burst: 1) }
        assertRejects(.periodNotWholeMicroseconds) { try RateLimit(requests: 1, per: .nanoseconds(1500), burst: 1) }
        assertRejects(.periodNotWholeMicroseconds) { try RateLimit(requests: 1, periodMicroseconds: 0, burst: 1) }
        assertRejects(.rateTooHigh) { try RateLimit(requests: 1_000_001, per: .seconds(1), burst: 1) }
        assertRejects(.windowTooLong) { try RateLimit(requests: 1, per: .seconds(1), burst: Int.max) }
        assertRejects(.windowTooLong) { try RateLimit(requests: 1, per: .seconds(36 * 366 * 86_400), burst: 1) }
        assertRejects(.windowTooLong) { try RateLimit(requests: 1, per: .seconds(Int64.max), burst: 1) }
    }

    func testWindowBoundIsInclusive() throws {
        let largest = try RateLimit(requests: 1, periodMicroseconds: RateLimit.maxWindow, burst: 1)
        XCTAssertEqual(largest.window, RateLimit.maxWindow)
        assertRejects(.windowTooLong) { try RateLimit(requests: 1, periodMicroseconds: RateLimit.maxWindow + 1, burst: 1) }
        assertRejects(.windowTooLong) { try RateLimit(requests: 1, periodMicroseconds: RateLimit.maxWindow / 2 + 1, burst: 2) }
    }

    func testErrorDescriptionsAreDistinct() {
        let errors: [RateLimitError] = [
            .requestsNotPositive, .burstNotPositive, .periodNotWholeMicroseconds, .rateTooHigh, .windowTooLong,
        ]
        XCTAssertEqual(Set(errors.map(\.description)).count, errors.count)
    }

    private func assertRejects(
        _ expected: RateLimitError, file: StaticString = #filePath, line: UInt = #line,
        _ make: () throws -> RateLimit
    ) {
        XCTAssertThrowsError(try make(), file: file, line: line) { error in
            XCTAssertEqual(error as? RateLimitError, expected, file: file, line: line)
        }
    }
}
