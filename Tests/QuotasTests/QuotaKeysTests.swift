@testable import Hierarchy
import Quotas
import XCTest

final class QuotaKeysTests: XCTestCase {
    /// 2025-11-24T16:00:00Z
    private let start: Int64 = 1_764_000_000_000_000
    private let day: Int64 = 86_400_000_000

    func testEveryKeyIsHashTaggedByTheOEM() throws {
        let keys = QuotaKeys(prefix: "erp", oem: try NodeID("acme"), node: try NodeID("contoso"), period: UTCCalendarPeriod(now: start))
        XCTAssertEqual(keys.rate, "erp:q:{acme}:contoso:rate")
        XCTAssertEqual(keys.day, "erp:q:{acme}:contoso:day:20251124")
        XCTAssertEqual(keys.month, "erp:q:{acme}:contoso:month:202511")
        XCTAssertEqual(keys.inflight, "erp:q:{acme}:contoso:inflight")
        for key in keys.all {
            // Redis Cluster hashes only what is between the first { and the next }.
            XCTAssertEqual(key.split(separator: "{", maxSplits: 1)[1].prefix(while: { $0 != "}" }), "acme")
        }
    }

    func testDayRollsOverExactlyAtUTCMidnight() {
        let midnight: Int64 = 1_764_028_800_000_000 // 2025-11-25T00:00:00Z
        let before = UTCCalendarPeriod(now: midnight - 1)
        let after = UTCCalendarPeriod(now: midnight)
        XCTAssertEqual(before.dayStamp, "20251124")
        XCTAssertEqual(before.untilDayEnd, 1)
        XCTAssertEqual(after.dayStamp, "20251125")
        XCTAssertEqual(after.untilDayEnd, day)
        XCTAssertEqual(after.untilMonthEnd, 6 * day)
    }

    func testMonthAndYearRollOver() {
        let newYear: Int64 = 1_767_225_600_000_000 // 2026-01-01T00:00:00Z
        let last = UTCCalendarPeriod(now: newYear - 1)
        XCTAssertEqual(last.dayStamp, "20251231")
        XCTAssertEqual(last.monthStamp, "202512")
        XCTAssertEqual(last.untilMonthEnd, 1)
        let first = UTCCalendarPeriod(now: newYear)
        XCTAssertEqual(first.dayStamp, "20260101")
        XCTAssertEqual(first.monthStamp, "202601")
        XCTAssertEqual(first.untilMonthEnd, 31 * day)
    }

    func testLeapDay() {
        let leapDay: Int64 = 1_709_164_800_000_000 // 2024-02-29T00:00:00Z
        let period = UTCCalendarPeriod(now: leapDay + 1)
        XCTAssertEqual(period.dayStamp, "20240229")
        XCTAssertEqual(period.daysInMonth, 29)
        XCTAssertEqual(period.untilMonthEnd, day - 1)
        XCTAssertEqual(UTCCalendarPeriod(now: leapDay + day).dayStamp, "20240301")
        XCTAssertEqual(UTCCalendarPeriod(now: leapDay - 1).dayStamp, "20240228")
        // 2100 is not a leap year, 2000 was.
        XCTAssertEqual(UTCCalendarPeriod(now: 4_107_456_000_000_000).dayStamp, "21000228") // 2100-02-28
        XCTAssertEqual(UTCCalendarPeriod(now: 4_107_456_000_000_000).daysInMonth, 28)
        XCTAssertEqual(UTCCalendarPeriod(now: 951_782_400_000_000).dayStamp, "20000229")
    }

    func testEpochAndEveryDayOfAYearAgreeWithACounter() {
        XCTAssertEqual(UTCCalendarPeriod(now: 0).dayStamp, "19700101")
        // Walk 2024 day by day: stamps strictly increase, months have the right lengths.
        var previous = "20231231"
        var daysPerMonth: [String: Int] = [:]
        for index in 0..<366 {
            let period = UTCCalendarPeriod(now: 1_704_067_200_000_000 + Int64(index) * day + 12 * 3_600_000_000)
            XCTAssertGreaterThan(period.dayStamp, previous)
            previous = period.dayStamp
            daysPerMonth[period.monthStamp, default: 0] += 1
        }
        XCTAssertEqual(previous, "20241231")
        XCTAssertEqual(daysPerMonth.keys.sorted().map { daysPerMonth[$0]! }, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    }
}
