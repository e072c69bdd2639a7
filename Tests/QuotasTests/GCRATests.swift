import XCTest
@testable import Quotas

final class GCRATests: XCTestCase {
    /// A fixed, arbitrary start well into the epoch, so that no test relies on now == 0.
    private let start: Int64 = 1_764_000_000_000_000

    func testBurstIsAdmittedBackToBackFromIdleThenRefused() throws {
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 5))
        var store = Store()

        for expectedRemaining in [4, 3, 2, 1, 0] {
            XCTAssertEqual(store.apply(gcra, now: start), .admitted(
                newTAT: start + Int64(5 - expectedRemaining) * 100_000,
                remaining: expectedRemaining,
                resetAfter: Int64(5 - expectedRemaining) * 100_000
            ))
        }
        XCTAssertEqual(store.apply(gcra, now: start), .refused(retryAfter: 100_000, resetAfter: 500_000))
    }

    func testBurstOfOneAdmitsOneRequestPerInterval() throws {
        let gcra = GCRA(try RateLimit(requests: 1, per: .seconds(1), burst: 1))
        var store = Store()
        XCTAssertEqual(store.apply(gcra, now: start), .admitted(newTAT: start + 1_000_000, remaining: 0, resetAfter: 1_000_000))
        XCTAssertEqual(store.apply(gcra, now: start + 1), .refused(retryAfter: 999_999, resetAfter: 999_999))
        XCTAssertEqual(store.apply(gcra, now: start + 999_999), .refused(retryAfter: 1, resetAfter: 1))
        XCTAssertEqual(store.apply(gcra, now: start + 1_000_000), .admitted(newTAT: start + 2_000_000, remaining: 0, resetAfter: 1_000_000))
    }

    func testGreedyClientGetsExactlyBurstPlusRateTimesElapsed() throws {
        // Sends as many requests as are admitted at every millisecond tick for a minute.
        for (requests, burst) in [(100, 20), (500, 1), (1, 1), (1000, 1000)] {
            let limit = try RateLimit(requests: requests, per: .seconds(1), burst: burst)
            let admittedTimes = greedyClient(GCRA(limit), from: start, through: start + 60_000_000, tick: 1_000)
            XCTAssertEqual(admittedTimes.count, burst + requests * 60, "\(requests)/s burst \(burst)")
            // Never ahead of the budget at any instant, counting from the first request.
            for (index, time) in admittedTimes.enumerated() {
                XCTAssertLessThanOrEqual(Int64(index + 1), Int64(burst) + (time - start) / limit.emissionInterval)
            }
        }
    }

    func testGreedyClientNeverExceedsANonDividingRate() throws {
        let limit = try RateLimit(requests: 3, per: .seconds(1), burst: 2)
        let elapsed: Int64 = 1_000 * 1_000_000
        let admitted = greedyClient(GCRA(limit), from: start, through: start + elapsed, tick: 10_000)
        // One admission per T = 333 334 µs after the burst: 2 + 2999, never more than 2 + 3000.
        XCTAssertEqual(admitted.count, 2 + Int(elapsed / limit.emissionInterval))
        XCTAssertLessThanOrEqual(admitted.count, 2 + 3 * 1_000)
    }

    func testRequestsAtTheSteadyRateAreAllAdmitted() throws {
        let gcra = GCRA(try RateLimit(requests: 50, per: .seconds(1), burst: 3))
        var store = Store()
        for step in 0..<10_000 {
            let decision = store.apply(gcra, now: start + Int64(step) * 20_000)
            // The bucket never fills: each request finds the previous one fully drained.
            XCTAssertEqual(decision, .admitted(newTAT: start + Int64(step) * 20_000 + 20_000, remaining: 2, resetAfter: 20_000))
        }
    }

    func testRefusedRequestsConsumeNothing() throws {
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 3))

        // A refusal leaves every later decision exactly as it would have been.
        var store = Store()
        for _ in 0..<3 { _ = store.apply(gcra, now: start) }
        let full = store.tat
        for offset in stride(from: Int64(0), to: 100_000, by: 1_000) {
            XCTAssertEqual(store.apply(gcra, now: start + offset), .refused(retryAfter: 100_000 - offset, resetAfter: 300_000 - offset))
        }
        XCTAssertEqual(store.tat, full)
        XCTAssertEqual(store.apply(gcra, now: start + 100_000), .admitted(newTAT: start + 400_000, remaining: 0, resetAfter: 300_000))

        // A client that keeps sending 20 requests every 50 ms, refused or not, gets exactly what
        // a client stopping at its first refusal gets: the refusals cost it nothing.
        var flooder = Store()
        var admitted = 0
        for now in stride(from: start, through: start + 5_000_000, by: 50_000) {
            for _ in 0..<20 {
                if case .admitted = flooder.apply(gcra, now: now) { admitted += 1 }
            }
        }
        XCTAssertEqual(admitted, 3 + 50)
        XCTAssertEqual(admitted, greedyClient(gcra, from: start, through: start + 5_000_000, tick: 50_000).count)
    }

    func testCostGreaterThanOneChargesThatManyIntervals() throws {
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 10))
        var store = Store()
        XCTAssertEqual(store.apply(gcra, now: start, cost: 4), .admitted(newTAT: start + 400_000, remaining: 6, resetAfter: 400_000))
        XCTAssertEqual(store.apply(gcra, now: start, cost: 4), .admitted(newTAT: start + 800_000, remaining: 2, resetAfter: 800_000))
        // Two slots left: cost 4 waits for two more intervals, and consumes nothing meanwhile.
        XCTAssertEqual(store.apply(gcra, now: start, cost: 4), .refused(retryAfter: 200_000, resetAfter: 800_000))
        XCTAssertEqual(store.apply(gcra, now: start, cost: 2), .admitted(newTAT: start + 1_000_000, remaining: 0, resetAfter: 1_000_000))
        XCTAssertEqual(store.apply(gcra, now: start, cost: 1), .refused(retryAfter: 100_000, resetAfter: 1_000_000))
    }

    func testCostEqualToBurstIsAdmittedOnlyFromIdle() throws {
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 5))
        var store = Store()
        XCTAssertEqual(store.apply(gcra, now: start, cost: 5), .admitted(newTAT: start + 500_000, remaining: 0, resetAfter: 500_000))
        XCTAssertEqual(store.apply(gcra, now: start + 499_999, cost: 5), .refused(retryAfter: 1, resetAfter: 1))
        XCTAssertEqual(store.apply(gcra, now: start + 500_000, cost: 5), .admitted(newTAT: start + 1_000_000, remaining: 0, resetAfter: 500_000))
    }

    func testCostAboveBurstIsAlwaysRefusedWithItsOwnReason() throws {
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 5))
        for stored: Int64? in [nil, 0, start - 10_000_000, start, start + 300_000, start + 500_000] {
            XCTAssertEqual(gcra.decide(storedTAT: stored, now: start, cost: 6), .costExceedsBurst, "\(String(describing: stored))")
            XCTAssertEqual(gcra.decide(storedTAT: stored, now: start, cost: .max), .costExceedsBurst)
        }
    }

    func testRetryAfterIsExact() throws {
        let limits = [
            try RateLimit(requests: 10, per: .seconds(1), burst: 5),
            try RateLimit(requests: 3, per: .seconds(1), burst: 4),
            try RateLimit(requests: 7, per: .milliseconds(13), burst: 9),
            try RateLimit(requests: 1, per: .seconds(86_400), burst: 2),
        ]
        var refusals = 0
        for limit in limits {
            let gcra = GCRA(limit)
            for stored in storedTATs(around: start, window: limit.window) {
                for cost in 1...limit.burst {
                    guard case .refused(let retryAfter, let resetAfter) = gcra.decide(storedTAT: stored, now: start, cost: cost) else {
                        continue
                    }
                    refusals += 1
                    XCTAssertGreaterThan(retryAfter, 0)
                    XCTAssertEqual(resetAfter, stored.map { $0 - start })
                    XCTAssertLessThanOrEqual(retryAfter, resetAfter)
                    guard case .refused = gcra.decide(storedTAT: stored, now: start + retryAfter - 1, cost: cost) else {
                        return XCTFail("admitted before retryAfter: \(limit), stored \(String(describing: stored)), cost \(cost)")
                    }
                    guard case .admitted = gcra.decide(storedTAT: stored, now: start + retryAfter, cost: cost) else {
                        return XCTFail("refused at retryAfter: \(limit), stored \(String(describing: stored)), cost \(cost)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(refusals, 1_000, "the grid must reach refusing states")
    }

    func testRemainingCountsTheUnitRequestsStillAdmittedNow() throws {
        let limit = try RateLimit(requests: 7, per: .seconds(1), burst: 6)
        let gcra = GCRA(limit)
        for stored in storedTATs(around: start, window: limit.window) {
            for cost in 1...limit.burst {
                var store = Store(tat: stored)
                guard case .admitted(_, let remaining, _) = store.apply(gcra, now: start, cost: cost) else { continue }
                var more = 0
                while case .admitted = store.apply(gcra, now: start) { more += 1 }
                XCTAssertEqual(more, remaining, "stored \(String(describing: stored)), cost \(cost)")
            }
        }
    }

    func testResetAfterIsWhenTheFullBurstIsBack() throws {
        let gcra = GCRA(try RateLimit(requests: 4, per: .seconds(1), burst: 3))
        var store = Store()
        _ = store.apply(gcra, now: start)
        guard case .admitted(_, _, let resetAfter) = store.apply(gcra, now: start + 100_000) else {
            return XCTFail("second request refused")
        }
        // 2 × 250 000 booked, 100 000 of it already elapsed.
        XCTAssertEqual(resetAfter, 400_000)
        XCTAssertEqual(
            gcra.decide(storedTAT: store.tat, now: start + 100_000 + resetAfter, cost: 3),
            .admitted(newTAT: start + 100_000 + resetAfter + 750_000, remaining: 0, resetAfter: 750_000)
        )
        guard case .refused = gcra.decide(storedTAT: store.tat, now: start + 100_000 + resetAfter - 1, cost: 3) else {
            return XCTFail("full burst admitted before resetAfter")
        }
    }

    func testMissingAndPastTATsMeanIdle() throws {
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 5))
        let idle = GCRA.Decision.admitted(newTAT: start + 100_000, remaining: 4, resetAfter: 100_000)
        for stored: Int64? in [nil, start, start - 1, 0, -1, .min, start - 20 * 365 * 86_400_000_000] {
            XCTAssertEqual(gcra.decide(storedTAT: stored, now: start), idle, "\(String(describing: stored))")
        }
    }

    func testLargeValuesDoNotOverflow() throws {
        let widest = GCRA(try RateLimit(requests: 1, periodMicroseconds: 1 << 40, burst: 1 << 10))
        XCTAssertEqual(widest.limit.window, RateLimit.maxWindow)
        let latest = GCRA.maxInstant
        // A gap of the whole clock range, with the widest window.
        XCTAssertEqual(
            widest.decide(storedTAT: 0, now: latest, cost: 1 << 10),
            .admitted(newTAT: latest + RateLimit.maxWindow, remaining: 0, resetAfter: RateLimit.maxWindow)
        )
        XCTAssertLessThan(latest + RateLimit.maxWindow, 1 << 53, "must stay exact in a Lua double")
        XCTAssertEqual(
            widest.decide(storedTAT: latest + RateLimit.maxWindow, now: latest, cost: 1 << 10),
            .refused(retryAfter: RateLimit.maxWindow, resetAfter: RateLimit.maxWindow)
        )
        // Extreme stored values, as from a corrupt key.
        for now in [0, latest] {
            for stored in [Int64.max, .min, .max - 1, .min + 1] {
                XCTAssertEqual(widest.decide(storedTAT: stored, now: now), widest.decide(storedTAT: nil, now: now))
            }
        }
    }

    func testATATBeyondOneWindowIsTreatedAsIdle() throws {
        // Only a clock that stepped back (or a corrupt key) can leave the TAT more than one
        // window ahead; the tenant must not be locked out for the size of the step.
        let gcra = GCRA(try RateLimit(requests: 10, per: .seconds(1), burst: 5))
        let window: Int64 = 500_000
        XCTAssertEqual(gcra.decide(storedTAT: start + window, now: start), .refused(retryAfter: 100_000, resetAfter: window))
        XCTAssertEqual(
            gcra.decide(storedTAT: start + window + 1, now: start),
            .admitted(newTAT: start + 100_000, remaining: 4, resetAfter: 100_000)
        )
        XCTAssertEqual(
            gcra.decide(storedTAT: start + 3_600_000_000, now: start),
            .admitted(newTAT: start + 100_000, remaining: 4, resetAfter: 100_000)
        )
    }

    func testTimeStartingAtZeroWorks() throws {
        let gcra = GCRA(try RateLimit(requests: 2, per: .seconds(1), burst: 2))
        var store = Store()
        XCTAssertEqual(store.apply(gcra, now: 0), .admitted(newTAT: 500_000, remaining: 1, resetAfter: 500_000))
        XCTAssertEqual(store.apply(gcra, now: 0), .admitted(newTAT: 1_000_000, remaining: 0, resetAfter: 1_000_000))
        XCTAssertEqual(store.apply(gcra, now: 0), .refused(retryAfter: 500_000, resetAfter: 1_000_000))
    }

    // MARK: - Helpers

    /// Stands in for the Redis key: applies a decision the way the Lua script will.
    private struct Store {
        var tat: Int64?

        mutating func apply(_ gcra: GCRA, now: Int64, cost: Int = 1) -> GCRA.Decision {
            let decision = gcra.decide(storedTAT: tat, now: now, cost: cost)
            if case .admitted(let newTAT, _, _) = decision { tat = newTAT }
            return decision
        }
    }

    /// Stored TATs from a window in the past to a window ahead of `now`: both edges, their
    /// neighbours, and a spread in between that does not line up with the emission interval.
    private func storedTATs(around now: Int64, window: Int64) -> [Int64?] {
        let edges: [Int64] = [-window, -1, 0, 1, window - 1, window]
        let spread = stride(from: -window, through: window, by: Int(max(window / 97, 1)))
        return [nil] + (edges + spread).map { now + $0 }
    }

    /// The instants of every admission of a client that, at each tick, sends until refused.
    private func greedyClient(_ gcra: GCRA, from first: Int64, through last: Int64, tick: Int64) -> [Int64] {
        var store = Store()
        var admitted: [Int64] = []
        for now in stride(from: first, through: last, by: Int(tick)) {
            while case .admitted = store.apply(gcra, now: now) {
                admitted.append(now)
            }
        }
        return admitted
    }
}
