import Cells
import XCTest

final class CellLoadTests: XCTestCase {
    private func load(pending: Int = 2, inFlight: Int = 3, retryAfter: Int = 5) -> CellLoad {
        CellLoad(configuration: .init(maxPending: pending, maxInFlight: inFlight, retryAfterSeconds: retryAfter))
    }

    func testAdmitsUpToMaxPendingThenOverloaded() {
        var l = load(pending: 2, retryAfter: 7)
        XCTAssertEqual(l.admit(), .admitted)
        XCTAssertEqual(l.admit(), .admitted)
        XCTAssertEqual(l.admit(), .overloaded(retryAfterSeconds: 7))
        XCTAssertEqual(l.pending, 2, "a refusal counts nothing")
    }

    func testConnectionMovesPendingInFlightUpToMax() {
        var l = load(pending: 5, inFlight: 2)
        for _ in 0..<3 { XCTAssertEqual(l.admit(), .admitted) }
        XCTAssertTrue(l.connectionAcquired())
        XCTAssertTrue(l.connectionAcquired())
        XCTAssertFalse(l.connectionAcquired(), "in flight is full: the third waits")
        XCTAssertEqual(l.pending, 1)
        XCTAssertEqual(l.inFlight, 2)
        l.finished(.inFlight)
        XCTAssertTrue(l.connectionAcquired())
        XCTAssertEqual(l.pending, 0)
        XCTAssertEqual(l.inFlight, 2)
    }

    func testReconfiguringKeepsTheCountsUnderTheNewBounds() {
        var l = load(pending: 5, inFlight: 3)
        for _ in 0..<4 { _ = l.admit() }
        for _ in 0..<3 { _ = l.connectionAcquired() }
        var smaller = l.reconfigured(.init(maxPending: 1, maxInFlight: 2, retryAfterSeconds: 9))
        XCTAssertEqual(smaller.pending, 1)
        XCTAssertEqual(smaller.inFlight, 3)
        XCTAssertEqual(smaller.admit(), .overloaded(retryAfterSeconds: 9), "the load counted before the reload still fills the new bound")
        XCTAssertFalse(smaller.canAcquire)
        smaller.finished(.inFlight)
        smaller.finished(.inFlight)
        XCTAssertTrue(smaller.canAcquire)
    }

    func testPendingFreesOnceInFlight() {
        var l = load(pending: 1, inFlight: 3)
        XCTAssertEqual(l.admit(), .admitted)
        XCTAssertEqual(l.admit(), .overloaded(retryAfterSeconds: 5))
        XCTAssertTrue(l.connectionAcquired())
        XCTAssertEqual(l.admit(), .admitted)
    }

    func testAbandonedPendingFreesItsSlot() {
        var l = load(pending: 1)
        XCTAssertEqual(l.admit(), .admitted)
        l.finished(.pending)
        XCTAssertEqual(l.admit(), .admitted)
    }

    func testConnectionWithoutPendingIsRefused() {
        var l = load()
        XCTAssertFalse(l.connectionAcquired())
        XCTAssertEqual(l.inFlight, 0)
    }

    func testCountersNeverNegative() {
        var l = load()
        l.finished(.pending)
        l.finished(.inFlight)
        XCTAssertEqual(l.pending, 0)
        XCTAssertEqual(l.inFlight, 0)
    }

    func testTwoCellsAreIndependent() {
        var full = load(pending: 1)
        let other = load(pending: 1)
        _ = full.admit()
        XCTAssertEqual(full.admit(), .overloaded(retryAfterSeconds: 5))
        var copy = other
        XCTAssertEqual(copy.admit(), .admitted)
    }

    func testRandomEventsStayWithinBounds() {
        var generator = SeededGenerator(seed: 21)
        var l = load(pending: 4, inFlight: 3)
        for _ in 0..<10_000 {
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: _ = l.admit()
            case 1: _ = l.connectionAcquired()
            case 2: l.finished(.pending)
            default: l.finished(.inFlight)
            }
            XCTAssertTrue((0...4).contains(l.pending))
            XCTAssertTrue((0...3).contains(l.inFlight))
        }
    }
}
