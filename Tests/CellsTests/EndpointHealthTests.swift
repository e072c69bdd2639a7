import Cells
import XCTest

final class EndpointHealthTests: XCTestCase {
    private func health(healthy: Int = 2, unhealthy: Int = 3) -> EndpointHealth {
        EndpointHealth(thresholds: .init(healthy: healthy, unhealthy: unhealthy))
    }

    func testStartsHealthy() {
        XCTAssertTrue(health().isHealthy)
    }

    func testBecomesUnhealthyOnlyAtThreshold() {
        var h = health(unhealthy: 3)
        XCTAssertEqual(h.recordCheck(succeeded: false), .unchanged)
        XCTAssertEqual(h.recordCheck(succeeded: false), .unchanged)
        XCTAssertTrue(h.isHealthy)
        XCTAssertEqual(h.recordCheck(succeeded: false), .becameUnhealthy)
        XCTAssertFalse(h.isHealthy)
        XCTAssertEqual(h.recordCheck(succeeded: false), .unchanged, "further failures report no new transition")
    }

    func testSuccessResetsFailureRun() {
        var h = health(unhealthy: 3)
        _ = h.recordCheck(succeeded: false)
        _ = h.recordCheck(succeeded: false)
        _ = h.recordCheck(succeeded: true)
        _ = h.recordCheck(succeeded: false)
        _ = h.recordCheck(succeeded: false)
        XCTAssertTrue(h.isHealthy, "failures that are not consecutive must not flip the endpoint")
        XCTAssertEqual(h.recordCheck(succeeded: false), .becameUnhealthy)
    }

    func testRecoversOnlyAfterHealthyThresholdConsecutiveSuccesses() {
        var h = health(healthy: 2, unhealthy: 1)
        XCTAssertEqual(h.recordCheck(succeeded: false), .becameUnhealthy)
        XCTAssertEqual(h.recordCheck(succeeded: true), .unchanged)
        XCTAssertEqual(h.recordCheck(succeeded: false), .unchanged, "a failure breaks the success run")
        XCTAssertEqual(h.recordCheck(succeeded: true), .unchanged)
        XCTAssertFalse(h.isHealthy)
        XCTAssertEqual(h.recordCheck(succeeded: true), .becameHealthy)
        XCTAssertTrue(h.isHealthy)
        XCTAssertEqual(h.opposingRun, 0)
    }

    func testThresholdOfOneFlipsOnEveryOppositeResult() {
        var h = health(healthy: 1, unhealthy: 1)
        XCTAssertEqual(h.recordCheck(succeeded: false), .becameUnhealthy)
        XCTAssertEqual(h.recordCheck(succeeded: true), .becameHealthy)
        XCTAssertEqual(h.recordCheck(succeeded: true), .unchanged)
    }

    func testOpposingRunStaysBelowThreshold() {
        var h = health(healthy: 4, unhealthy: 5)
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2_000 {
            _ = h.recordCheck(succeeded: Bool.random(using: &generator))
            let threshold = h.isHealthy ? h.thresholds.unhealthy : h.thresholds.healthy
            XCTAssertLessThan(h.opposingRun, threshold)
            XCTAssertGreaterThanOrEqual(h.opposingRun, 0)
        }
    }
}
