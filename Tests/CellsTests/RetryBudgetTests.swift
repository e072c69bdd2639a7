import Cells
import XCTest

final class RetryBudgetTests: XCTestCase {
    private func budget(min: Int = 2, ratio: Double = 0.2) -> RetryBudget {
        RetryBudget(configuration: .init(minRetriesInFlight: min, ratio: ratio))
    }

    func testMinimumAllowsRetriesWhenQuiet() {
        var b = budget(min: 2, ratio: 0.2)
        b.requestStarted()
        XCTAssertEqual(b.limit, 2)
        XCTAssertTrue(b.retryStarted())
        XCTAssertTrue(b.retryStarted())
        XCTAssertFalse(b.retryStarted())
        XCTAssertEqual(b.retriesInFlight, 2, "a refused retry is not counted")
    }

    func testReconfiguringKeepsActiveRequestsAndRetries() {
        var budget = RetryBudget(configuration: .init(minRetriesInFlight: 1, ratio: 0))
        for _ in 0..<10 { budget.requestStarted() }
        XCTAssertTrue(budget.retryStarted())
        var wider = budget.reconfigured(.init(minRetriesInFlight: 0, ratio: 0.3))
        XCTAssertEqual(wider.activeRequests, 10)
        XCTAssertEqual(wider.retriesInFlight, 1)
        XCTAssertTrue(wider.retryStarted())
        XCTAssertTrue(wider.retryStarted())
        XCTAssertFalse(wider.retryStarted(), "30 % of 10 active requests")
    }

    func testLimitFollowsRatioOfActiveRequests() {
        var b = budget(min: 1, ratio: 0.2)
        for _ in 0..<50 { b.requestStarted() }
        XCTAssertEqual(b.limit, 10)
        for _ in 0..<10 { XCTAssertTrue(b.retryStarted()) }
        XCTAssertFalse(b.retryStarted())
        b.retryFinished()
        XCTAssertTrue(b.retryStarted(), "a finished retry frees its slot")
    }

    func testRatioRoundsDown() {
        var b = budget(min: 0, ratio: 0.2)
        for _ in 0..<9 { b.requestStarted() }
        XCTAssertEqual(b.limit, 1)
        XCTAssertTrue(b.retryStarted())
        XCTAssertFalse(b.retryStarted())
    }

    func testFewerActiveRequestsShrinkTheBudget() {
        var b = budget(min: 0, ratio: 0.5)
        for _ in 0..<4 { b.requestStarted() }
        XCTAssertTrue(b.retryStarted())
        XCTAssertTrue(b.retryStarted())
        for _ in 0..<3 { b.requestFinished() }
        XCTAssertEqual(b.limit, 0)
        XCTAssertFalse(b.retryStarted(), "retries already in flight finish; no new ones start")
    }

    func testZeroBudgetNeverRetries() {
        var b = budget(min: 0, ratio: 0)
        for _ in 0..<1_000 { b.requestStarted() }
        XCTAssertFalse(b.retryStarted())
    }

    func testCountersNeverNegative() {
        var b = budget()
        b.requestFinished()
        b.retryFinished()
        XCTAssertEqual(b.activeRequests, 0)
        XCTAssertEqual(b.retriesInFlight, 0)
    }

    func testRandomEventsNeverExceedTheLimitAtStart() {
        var generator = SeededGenerator(seed: 11)
        var b = budget(min: 1, ratio: 0.25)
        for _ in 0..<10_000 {
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: b.requestStarted()
            case 1: b.requestFinished()
            case 2:
                let before = b.retriesInFlight
                if b.retryStarted() { XCTAssertLessThanOrEqual(b.retriesInFlight, b.limit) }
                else { XCTAssertEqual(b.retriesInFlight, before) }
            default: b.retryFinished()
            }
            XCTAssertGreaterThanOrEqual(b.activeRequests, 0)
            XCTAssertGreaterThanOrEqual(b.retriesInFlight, 0)
        }
    }
}

final class RetryPolicyTests: XCTestCase {
    private func mayRetry(
        _ method: String, _ failure: RetryPolicy.Failure, streamed: Bool = false, attempt: Int = 1, max: Int = 3
    ) -> Bool {
        RetryPolicy.mayRetry(method: method, failure: failure, bodyStreamed: streamed, attempt: attempt, maxAttempts: max)
    }

    func testConnectFailureAlwaysRetryable() {
        for method in ["POST", "PATCH", "GET", "CONNECT", "whatever"] {
            XCTAssertTrue(mayRetry(method, .connectFailed), method)
            XCTAssertTrue(mayRetry(method, .connectFailed, streamed: true), method)
        }
    }

    func testIdempotentMethodsRetryableBeforeBodyStreamed() {
        for method in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"] {
            XCTAssertTrue(mayRetry(method, .afterConnect), method)
            XCTAssertFalse(mayRetry(method, .afterConnect, streamed: true), method)
        }
    }

    func testNonIdempotentMethodsNotRetriedAfterConnect() {
        for method in ["POST", "PATCH", "CONNECT", "get", "Delete", ""] {
            XCTAssertFalse(mayRetry(method, .afterConnect), method)
        }
    }

    func testAttemptsBound() {
        XCTAssertTrue(mayRetry("GET", .afterConnect, attempt: 2, max: 3))
        XCTAssertFalse(mayRetry("GET", .afterConnect, attempt: 3, max: 3))
        XCTAssertFalse(mayRetry("GET", .connectFailed, attempt: 3, max: 3))
        XCTAssertFalse(mayRetry("GET", .connectFailed, attempt: 1, max: 1), "maxAttempts 1 means never retry")
    }
}
