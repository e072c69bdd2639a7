import XCTest
@testable import GatewayConfig

final class QuantitiesTests: XCTestCase {
    func testDurationsWithEachUnit() {
        XCTAssertEqual(Quantities.duration("250ms"), .milliseconds(250))
        XCTAssertEqual(Quantities.duration("10s"), .seconds(10))
        XCTAssertEqual(Quantities.duration("2m"), .seconds(120))
        XCTAssertEqual(Quantities.duration("1h"), .seconds(3600))
        XCTAssertEqual(Quantities.duration("0s"), .zero)
        XCTAssertEqual(Quantities.duration("0ms"), .zero)
    }

    func testDurationsWithoutAnExplicitWholeNumberAndUnitAreRejected() {
        let rejected = [
            "10", "-1s", "1.5s", "10 s", " 10s", "10s ", "", "s", "ms", "m", "10S", "10MS", "10sec", "1d", "1h30m",
            "0x10s", "ten s",
        ]
        for text in rejected {
            XCTAssertNil(Quantities.duration(text), "'\(text)' should be rejected")
        }
    }

    func testDurationThatOverflowsIsRejected() {
        // 9_999_999_999_999 hours in nanoseconds does not fit in Int64.
        XCTAssertNil(Quantities.duration("9999999999999h"))
        XCTAssertNil(Quantities.duration("99999999999999999999ms"))
    }

    func testByteSizesPlainAndWithBinaryUnits() {
        XCTAssertEqual(Quantities.byteSize("8192"), 8192)
        XCTAssertEqual(Quantities.byteSize("0"), 0)
        XCTAssertEqual(Quantities.byteSize("512B"), 512)
        XCTAssertEqual(Quantities.byteSize("16KiB"), 16 * 1024)
        XCTAssertEqual(Quantities.byteSize("10MiB"), 10 * 1024 * 1024)
        XCTAssertEqual(Quantities.byteSize("1GiB"), 1024 * 1024 * 1024)
    }

    func testByteSizesWithDecimalUnitsSignsOrFractionsAreRejected() {
        let rejected = ["1KB", "1kb", "1kib", "1K", "1MB", "-1", "-1KiB", "1.5MiB", "1 KiB", "", "KiB", "B", "1TiB", "ten"]
        for text in rejected {
            XCTAssertNil(Quantities.byteSize(text), "'\(text)' should be rejected")
        }
    }

    func testByteSizeThatOverflowsIsRejected() {
        XCTAssertNil(Quantities.byteSize("99999999999GiB"))
    }

    func testDurationMillisecondsTruncatesToWholeMilliseconds() {
        XCTAssertEqual(Duration.seconds(2).milliseconds, 2000)
        XCTAssertEqual(Duration.milliseconds(1500).milliseconds, 1500)
        XCTAssertEqual(Duration.microseconds(2999).milliseconds, 2)
        XCTAssertEqual(Duration.zero.milliseconds, 0)
    }
}
