import Hierarchy
import TenantHealth
import XCTest

/// A write that failed keeps its finished minutes for the next one, boundedly.
final class UnpublishedMinutesTests: XCTestCase {
    func table(_ minute: Int64, requests: Int) -> MinuteFigures {
        var table = MinuteFigures(minute: minute)
        for _ in 0..<requests { table.record(try! NodePath(parsing: "acme/p1/c1"), status: 200, gatewayMicroseconds: 1, upstreamMicroseconds: nil) }
        return table
    }

    func testFinishedMinutesOfAFailedWriteAreWrittenWithTheNextOne() {
        var unpublished = UnpublishedMinutes(capacity: 2)
        let first = unpublished.takeMerged(with: [self.table(10, requests: 1), self.table(11, requests: 2)])
        XCTAssertEqual(first.map(\.minute), [10, 11])
        unpublished.keep(failed: first, nowMinute: 11)
        XCTAssertEqual(unpublished.minutes.map(\.minute), [10], "minute 11 is still the loops', handed over again")
        let second = unpublished.takeMerged(with: [self.table(11, requests: 3)])
        XCTAssertEqual(second.map(\.minute), [10, 11])
        XCTAssertEqual(second[0].tenants[NodePath(oem: try! NodeID("acme"))]?.requests, 1)
        XCTAssertEqual(unpublished.minutes, [], "taken: written, or kept again by the caller")
    }

    func testAtMostCapacityMinutesAreKept() {
        var unpublished = UnpublishedMinutes(capacity: 2)
        unpublished.keep(failed: [self.table(1, requests: 1), self.table(2, requests: 1)], nowMinute: 9)
        unpublished.keep(failed: [self.table(3, requests: 1), self.table(9, requests: 1)], nowMinute: 9)
        XCTAssertEqual(unpublished.minutes.map(\.minute), [2, 3], "the newest finished ones")
        XCTAssertEqual(unpublished.droppedMinutes, 1)
    }
}
