import Hierarchy
import TenantHealth
import XCTest

/// Per-minute aggregation on one loop: who is counted (partner and OEM, never a customer), how
/// minutes roll over, what a publication takes, and the bound on what is held.
final class HealthRecorderTests: XCTestCase {
    let c1 = try! NodePath(parsing: "acme/p1/c1")
    let c1b = try! NodePath(parsing: "acme/p1/c1b")
    let c2 = try! NodePath(parsing: "acme/p2/c2")
    let g1 = try! NodePath(parsing: "globex/gp/g1")

    func testARequestCountsForItsPartnerAndItsOEMOnly() {
        var table = MinuteFigures(minute: 7)
        table.record(self.c1, status: 200, gatewayMicroseconds: 50, upstreamMicroseconds: 400)
        table.record(self.c1b, status: 429, gatewayMicroseconds: 20, upstreamMicroseconds: nil)
        table.record(self.c2, status: 502, gatewayMicroseconds: 70, upstreamMicroseconds: 1_000)
        table.record(self.g1, status: nil, gatewayMicroseconds: 30, upstreamMicroseconds: nil)
        XCTAssertEqual(Set(table.tenants.keys.map(\.description)), ["acme", "acme/p1", "acme/p2", "globex", "globex/gp"])
        let p1 = table.tenants[try! NodePath(parsing: "acme/p1")]!
        XCTAssertEqual([p1.requests, p1.clientErrors, p1.serverErrors, p1.tooManyRequests], [2, 1, 0, 1])
        XCTAssertEqual(p1.gatewayTime.total, 2)
        XCTAssertEqual(p1.upstreamTime.total, 1, "a refused request was never sent upstream")
        let acme = table.tenants[NodePath(oem: self.c1.oem)]!
        XCTAssertEqual([acme.requests, acme.clientErrors, acme.serverErrors, acme.tooManyRequests], [3, 1, 1, 1])
        let globex = table.tenants[NodePath(oem: self.g1.oem)]!
        XCTAssertEqual([globex.requests, globex.clientErrors, globex.serverErrors], [1, 0, 0], "a client that left has no status")
    }

    func testTheCurrentMinuteIsPublishedSoFarAndAFinishedOneForGood() {
        var recorder = HealthRecorder()
        recorder.record(self.c1, minute: 100, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: 10)
        let sofar = recorder.take(nowMinute: 100)
        XCTAssertEqual(sofar.map(\.minute), [100])
        recorder.record(self.c1, minute: 100, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: 10)
        let again = recorder.take(nowMinute: 100)
        XCTAssertEqual(again.first?.tenants[NodePath(oem: self.c1.oem)]?.requests, 2, "each publication carries the whole minute so far")
        recorder.record(self.c1, minute: 101, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: 10)
        let rolled = recorder.take(nowMinute: 101)
        XCTAssertEqual(rolled.map(\.minute), [100, 101], "the finished minute once more, and the new one so far")
        XCTAssertNil(recorder.previous)
        XCTAssertEqual(recorder.take(nowMinute: 102).map(\.minute), [101], "101 ended: taken for good")
        XCTAssertNil(recorder.current)
        XCTAssertEqual(recorder.take(nowMinute: 103), [])
    }

    func testARequestEndingInAMinuteAlreadyTakenCountsInTheNextOne() {
        var recorder = HealthRecorder()
        recorder.record(self.c1, minute: 100, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: nil)
        _ = recorder.take(nowMinute: 101)
        recorder.record(self.c1, minute: 100, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: nil)
        XCTAssertEqual(recorder.current?.minute, 101, "minute 100 was published for good; it is never written again in part")
    }

    func testAtMostTwoMinutesAreHeldWhenNobodyTakesThem() {
        var recorder = HealthRecorder()
        for minute in Int64(100)..<110 {
            recorder.record(self.c1, minute: minute, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: nil)
        }
        XCTAssertEqual(recorder.previous?.minute, 108)
        XCTAssertEqual(recorder.current?.minute, 109)
        XCTAssertEqual(recorder.droppedMinutes, 8)
        // A request a hair late for the minute before the current one still finds it.
        recorder.record(self.c1, minute: 108, status: 500, gatewayMicroseconds: 10, upstreamMicroseconds: nil)
        XCTAssertEqual(recorder.previous?.tenants[NodePath(oem: self.c1.oem)]?.serverErrors, 1)
    }

    func testLoopsMergeIntoOneTablePerMinute() {
        var a = MinuteFigures(minute: 5)
        var b = MinuteFigures(minute: 5)
        let c = MinuteFigures(minute: 4, tenants: [NodePath(oem: self.g1.oem): HealthFigures()])
        a.record(self.c1, status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: 100)
        b.record(self.c2, status: 500, gatewayMicroseconds: 20, upstreamMicroseconds: 200)
        let merged = MinuteFigures.merged([a, c, b])
        XCTAssertEqual(merged.map(\.minute), [4, 5])
        let acme = merged[1].tenants[NodePath(oem: self.c1.oem)]!
        XCTAssertEqual([acme.requests, acme.serverErrors, acme.upstreamTime.total], [2, 1, 2])
        XCTAssertEqual(MinuteFigures.minute(ofMicroseconds: 119_999_999), 1)
        XCTAssertEqual(MinuteFigures.minute(ofMicroseconds: 120_000_000), 2)
    }
}
