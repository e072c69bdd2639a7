import TenantHealth
import XCTest

/// The stored text round-trips, a foreign or broken one is refused, and a window merges every
/// node's figures before computing percentiles.
final class HealthFiguresTextTests: XCTestCase {
    func figures(_ statuses: [UInt], gateway: Int64, upstream: Int64?) -> HealthFigures {
        var figures = HealthFigures()
        for status in statuses { figures.record(status: status, gatewayMicroseconds: gateway, upstreamMicroseconds: upstream) }
        return figures
    }

    func testTheTextRoundTrips() {
        let figures = self.figures([200, 200, 404, 429, 503], gateway: 120, upstream: 3_000)
        XCTAssertEqual(figures.text, "h1;5;2;1;1;28:5;47:5", "120 µs in bucket 28 [107.6, 128), 3 ms in 47 [2896, 3444)")
        XCTAssertEqual(HealthFigures(text: figures.text), figures)
        XCTAssertEqual(HealthFigures(text: HealthFigures().text), HealthFigures())
    }

    func testATextOfAnotherLayoutOrBrokenIsRefused() {
        for text in ["h2;1;0;0;0;1:1;", "h1;1;0;0;0;1:1", "h1;x;0;0;0;;", "h1;1;0;0;0;113:1;", "h1;1;0;0;0;1:-1;", "h1;-1;0;0;0;;", ""] {
            XCTAssertNil(HealthFigures(text: text), text)
        }
    }

    func testAWindowMergesNodesPerMinuteAndInTotal() {
        let nodeA = self.figures([200, 200, 500], gateway: 100, upstream: 1_000)
        let nodeB = self.figures([429], gateway: 10_000, upstream: nil)
        let window = HealthWindow(minutes: [10, 11, 12], published: [10: [nodeA.text, nodeB.text, "garbage"], 12: [nodeA.text]])
        XCTAssertEqual(window.minutes.map(\.minute), [10, 11, 12], "every minute of the window, empty ones included")
        XCTAssertEqual(window.minutes.map(\.nodes), [2, 0, 1])
        let first = window.minutes[0].summary
        XCTAssertEqual([first.requests, first.clientErrors, first.serverErrors, first.tooManyRequests], [4, 1, 1, 1])
        XCTAssertEqual(first.gatewayP50, 99)
        XCTAssertEqual(first.gatewayP99, 10_624, "node B's one slow request is the merged p99, which neither node's own p99 averages to")
        XCTAssertNil(window.minutes[1].summary.gatewayP50)
        XCTAssertEqual(window.total.requests, 7)
        XCTAssertEqual(window.total.upstreamP99, 939, "1 ms is in [861, 1024): answered with 939")
    }
}
