import XCTest
@testable import ProxyEngine

final class RepeatedWarningsTests: XCTestCase {
    private static let second: UInt64 = 1_000_000_000

    func testTheFirstOccurrenceIsWrittenThenRepeatsAreCountedPerInterval() {
        var warnings = RepeatedWarnings(intervalNanoseconds: 10 * Self.second)
        XCTAssertEqual(warnings.occurrence("store down", now: 0), .log(repeatsBefore: 0))
        for tick in 1...79 {
            XCTAssertEqual(warnings.occurrence("store down", now: UInt64(tick) * Self.second / 10), .hold)
        }
        XCTAssertEqual(warnings.due(now: 9 * Self.second), [], "not before the interval is over")
        XCTAssertEqual(warnings.due(now: 10 * Self.second), [.init(message: "store down", repeats: 79)])
        XCTAssertEqual(warnings.occurrence("store down", now: 11 * Self.second), .hold, "a new interval started with the summary")
        XCTAssertEqual(warnings.due(now: 20 * Self.second), [.init(message: "store down", repeats: 1)])
        XCTAssertEqual(warnings.due(now: 30 * Self.second), [], "a quiet interval writes nothing")
        XCTAssertEqual(warnings.occurrence("store down", now: 31 * Self.second), .log(repeatsBefore: 0), "after a quiet interval, written at once")
    }

    func testAnOccurrenceAfterTheIntervalCarriesTheRepeatsNotYetSummarized() {
        var warnings = RepeatedWarnings(intervalNanoseconds: 10 * Self.second)
        XCTAssertEqual(warnings.occurrence("a", now: 0), .log(repeatsBefore: 0))
        XCTAssertEqual(warnings.occurrence("a", now: Self.second), .hold)
        XCTAssertEqual(warnings.occurrence("a", now: 2 * Self.second), .hold)
        XCTAssertEqual(warnings.occurrence("a", now: 12 * Self.second), .log(repeatsBefore: 2))
        XCTAssertEqual(warnings.due(now: 22 * Self.second), [], "those repeats were reported once")
    }

    func testMessagesAreCountedApart() {
        var warnings = RepeatedWarnings(intervalNanoseconds: 10 * Self.second)
        XCTAssertEqual(warnings.occurrence("admitting", now: 0), .log(repeatsBefore: 0))
        XCTAssertEqual(warnings.occurrence("refusing", now: 1), .log(repeatsBefore: 0))
        XCTAssertEqual(warnings.occurrence("admitting", now: 2), .hold)
        XCTAssertEqual(warnings.due(now: 10 * Self.second + 1), [.init(message: "admitting", repeats: 1)])
    }
}
