import Cells
import XCTest

final class OutlierDetectorTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    private func detector(failures: Int = 3, base: UInt64 = 10, max: UInt64 = 80, percent: Int = 50) -> OutlierDetector {
        OutlierDetector(configuration: .init(
            consecutiveFailures: failures,
            baseEjectionNanoseconds: base * second,
            maxEjectionNanoseconds: max * second,
            maxEjectedPercent: percent
        ))
    }

    /// Records `count` failures in a cell of 10 endpoints with nobody else ejected.
    private func fail(_ d: inout OutlierDetector, _ count: Int, at now: UInt64) -> OutlierDetector.Action {
        var last = OutlierDetector.Action.none
        for _ in 0..<count {
            last = d.record(failed: true, now: now, ejectedInCell: 0, endpointsInCell: 10)
        }
        return last
    }

    func testStartsActiveAndEligible() {
        let d = detector()
        XCTAssertEqual(d.state, .active(consecutiveFailures: 0))
        XCTAssertFalse(d.isEjected)
        XCTAssertTrue(d.isEligible(now: 0))
    }

    func testAbandonedProbeGivesItsSlotBack() {
        var d = detector(failures: 1)
        _ = fail(&d, 1, at: 0)
        XCTAssertTrue(d.admit(now: 10 * second))
        XCTAssertFalse(d.admit(now: 10 * second), "one probe at a time")
        d.abandon()
        XCTAssertEqual(d.state, .probing(probeInFlight: false))
        XCTAssertTrue(d.admit(now: 10 * second), "the next request probes instead")
    }

    func testAbandonOutsideAProbeChangesNothing() {
        var d = detector(failures: 2)
        _ = fail(&d, 1, at: 0)
        d.abandon()
        XCTAssertEqual(d.state, .active(consecutiveFailures: 1))
    }

    func testEjectsAfterConsecutiveFailures() {
        var d = detector(failures: 3)
        XCTAssertEqual(fail(&d, 2, at: 0), .none)
        XCTAssertFalse(d.isEjected)
        XCTAssertEqual(fail(&d, 1, at: 5 * second), .ejected(until: 15 * second))
        XCTAssertTrue(d.isEjected)
        XCTAssertFalse(d.isEligible(now: 15 * second - 1))
        XCTAssertFalse(d.admit(now: 15 * second - 1))
        XCTAssertTrue(d.isEligible(now: 15 * second))
    }

    func testSuccessResetsTheFailureRun() {
        var d = detector(failures: 3)
        _ = fail(&d, 2, at: 0)
        XCTAssertEqual(d.record(failed: false, now: 0, ejectedInCell: 0, endpointsInCell: 10), .none)
        XCTAssertEqual(fail(&d, 2, at: 0), .none)
        XCTAssertFalse(d.isEjected)
    }

    func testExpiredEjectionAdmitsExactlyOneProbe() {
        var d = detector(failures: 1)
        _ = fail(&d, 1, at: 0)
        XCTAssertTrue(d.admit(now: 10 * second), "the first request after the ejection is the probe")
        XCTAssertEqual(d.state, .probing(probeInFlight: true))
        XCTAssertTrue(d.isEjected, "a probing endpoint still counts against the cell's cap")
        XCTAssertFalse(d.isEligible(now: 11 * second))
        XCTAssertFalse(d.admit(now: 11 * second), "a second request while the probe is out is refused")
    }

    func testSuccessfulProbeRestoresAndDecaysEjectionCount() {
        var d = detector(failures: 1)
        _ = fail(&d, 1, at: 0)
        XCTAssertTrue(d.admit(now: 10 * second))
        // Probe fails: second ejection, twice as long.
        XCTAssertEqual(d.record(failed: true, now: 10 * second, ejectedInCell: 1, endpointsInCell: 10),
                       .ejected(until: 30 * second))
        XCTAssertEqual(d.ejectionCount, 2)
        XCTAssertTrue(d.admit(now: 30 * second))
        XCTAssertEqual(d.record(failed: false, now: 30 * second, ejectedInCell: 1, endpointsInCell: 10), .restored)
        XCTAssertEqual(d.state, .active(consecutiveFailures: 0))
        XCTAssertEqual(d.ejectionCount, 1, "decays by one, not reset")
        XCTAssertTrue(d.admit(now: 30 * second))
        // The next ejection uses the decayed count: 2nd ejection duration again.
        XCTAssertEqual(fail(&d, 1, at: 40 * second), .ejected(until: 60 * second))
    }

    func testBackoffDoublesAndIsCapped() {
        var d = detector(failures: 1, base: 10, max: 80)
        var now: UInt64 = 0
        var durations: [UInt64] = []
        _ = fail(&d, 1, at: now)
        for _ in 0..<6 {
            guard case .ejected(let until) = d.state else { return XCTFail("expected ejected, got \(d.state)") }
            durations.append((until - now) / second)
            now = until
            XCTAssertTrue(d.admit(now: now))
            _ = d.record(failed: true, now: now, ejectedInCell: 1, endpointsInCell: 10)
        }
        XCTAssertEqual(durations, [10, 20, 40, 80, 80, 80])
    }

    func testBackoffNeverOverflows() {
        let configuration = OutlierDetector.Configuration(
            consecutiveFailures: 1, baseEjectionNanoseconds: 3, maxEjectionNanoseconds: .max, maxEjectedPercent: 100)
        XCTAssertEqual(OutlierDetector.backoff(ejection: 1, configuration: configuration), 3)
        XCTAssertEqual(OutlierDetector.backoff(ejection: 63, configuration: configuration), 3 << 62)
        XCTAssertEqual(OutlierDetector.backoff(ejection: 64, configuration: configuration), .max)
        XCTAssertEqual(OutlierDetector.backoff(ejection: 10_000, configuration: configuration), .max)
        var d = OutlierDetector(configuration: configuration)
        XCTAssertEqual(d.record(failed: true, now: .max - 1, ejectedInCell: 0, endpointsInCell: 1),
                       .ejected(until: .max), "deadline saturates instead of wrapping")
    }

    func testCapSuppressesEjectionAndRetriesOnNextFailure() {
        var d = detector(failures: 2, percent: 50)
        _ = d.record(failed: true, now: 0, ejectedInCell: 2, endpointsInCell: 4)
        XCTAssertEqual(d.record(failed: true, now: 0, ejectedInCell: 2, endpointsInCell: 4), .ejectionSuppressed)
        XCTAssertFalse(d.isEjected)
        XCTAssertEqual(d.ejectionCount, 0)
        // Room again in the cell: the very next failure ejects.
        XCTAssertEqual(d.record(failed: true, now: 0, ejectedInCell: 1, endpointsInCell: 4), .ejected(until: 10 * second))
    }

    func testCapRoundsDown() {
        var d = detector(failures: 1, percent: 10)
        XCTAssertEqual(d.record(failed: true, now: 0, ejectedInCell: 0, endpointsInCell: 5), .ejectionSuppressed,
                       "10 % of 5 endpoints is 0")
        XCTAssertEqual(d.record(failed: true, now: 0, ejectedInCell: 0, endpointsInCell: 10), .ejected(until: 10 * second))
    }

    func testProbeFailureReEjectsEvenAtCap() {
        var d = detector(failures: 1, percent: 50)
        _ = d.record(failed: true, now: 0, ejectedInCell: 0, endpointsInCell: 2)
        XCTAssertTrue(d.admit(now: 10 * second))
        XCTAssertEqual(d.record(failed: true, now: 10 * second, ejectedInCell: 1, endpointsInCell: 2),
                       .ejected(until: 30 * second))
    }

    func testLateOutcomeWhileEjectedIsIgnored() {
        var d = detector(failures: 1)
        _ = fail(&d, 1, at: 0)
        XCTAssertEqual(d.record(failed: false, now: 1, ejectedInCell: 1, endpointsInCell: 10), .none)
        XCTAssertEqual(d.record(failed: true, now: 1, ejectedInCell: 1, endpointsInCell: 10), .none)
        XCTAssertEqual(d.state, .ejected(until: 10 * second))
        XCTAssertEqual(d.ejectionCount, 1)
    }

    /// Random event sequences keep the invariants: a backoff within the cap, a count never
    /// negative, and never a second request while the probe is out.
    func testRandomSequencesKeepInvariants() {
        var generator = SeededGenerator(seed: 42)
        var d = detector(failures: 2, base: 1, max: 16, percent: 100)
        var now: UInt64 = 0
        for _ in 0..<5_000 {
            now += UInt64.random(in: 0...(2 * second), using: &generator)
            if d.state == .probing(probeInFlight: true) {
                XCTAssertFalse(d.admit(now: now))
            }
            if d.admit(now: now) {
                _ = d.record(failed: Bool.random(using: &generator), now: now, ejectedInCell: 0, endpointsInCell: 1)
            }
            XCTAssertGreaterThanOrEqual(d.ejectionCount, 0)
            if case .ejected(let until) = d.state {
                XCTAssertLessThanOrEqual(until - now, 16 * second)
            }
        }
    }
}
