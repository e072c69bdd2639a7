@testable import Hierarchy
import XCTest
@testable import Quotas

/// Leases as values: what a grant admits and when its units lapse, how k follows the observed
/// rate, what is given back, and the gate's answers with a lease. Instants are explicit.
final class QuotaLeaseTests: XCTestCase {
    private let contoso = try! NodeID("contoso")
    private let acme = try! NodeID("acme")
    /// 2025-11-24T16:00:00Z: 8 h to the end of the UTC day.
    private let start: Int64 = 1_764_000_000_000_000
    private let settings = QuotaLeaseSettings(refreshInterval: 100_000, maxUnits: 50, share: 4, idleAfter: 1_000_000, capacity: 2)

    /// 100 per second (T = 10 ms), a burst of 100, 1000 a day.
    private var levels: [LevelLimits] {
        [LevelLimits(node: self.contoso, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 100, perDay: 1_000))]
    }

    private func plan(cost: Int = 1, now: Int64, want: Int, need: Int? = nil) throws -> QuotaPlan {
        try QuotaPlan(
            levels: self.levels, oem: self.acme, cost: cost, now: now,
            lease: QuotaLeaseRequest(customer: self.contoso, want: want, need: need ?? cost)
        )
    }

    private func grant(_ units: Int, base: Int64) -> QuotaLeaseGrant {
        QuotaLeaseGrant(
            units: units,
            remaining: [LevelRemaining(node: contoso, kind: .customer, rate: 100 - units, rateResetMilliseconds: 0, day: 1_000 - units, month: nil, concurrency: nil)],
            rateBases: [base]
        )
    }

    func testUnitsAreUsedInOrderAndLapseAtTheirRateDeadline() throws {
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 10), now: start)
        // Charged from an idle limit: the asking request's unit from start, held unit j from
        // start + 10 ms, usable until start + (j + 1) × 10 ms.
        lease.add(grant(10, base: start + 10_000), plan: try plan(now: start, want: 10), consumed: 1)
        XCTAssertEqual(lease.available(at: start), 9)
        XCTAssertTrue(lease.take(cost: 2, now: start + 5_000))
        XCTAssertEqual(lease.available(at: start + 5_000), 7, "held units 2...8")
        // 45 ms later held units 2 and 3 have lapsed (deadlines 30 and 40 ms): 5 left.
        XCTAssertEqual(lease.available(at: start + 45_000), 5)
        XCTAssertTrue(lease.take(cost: 5, now: start + 45_000))
        XCTAssertFalse(lease.take(cost: 1, now: start + 45_000), "nothing is admitted past the grant")
        XCTAssertEqual(lease.expiredUnits, 2, "the lapsed units are given back to the day")
        XCTAssertEqual(lease.usage, QuotaUsage(requests: 2, cost: 7), "the asking request was metered by the script")
    }

    func testAGrantFromABookedLimitLastsAsLongAsTheLimitIsBookedAhead() throws {
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 20), now: start)
        // Another node booked the limit 500 ms ahead: units stay usable until then and later.
        lease.add(grant(20, base: start + 500_000), plan: try plan(now: start, want: 20, need: 1), consumed: 0)
        XCTAssertEqual(lease.available(at: start + 500_000), 20)
        XCTAssertEqual(lease.available(at: start + 600_000), 10)
        XCTAssertEqual(lease.available(at: start + 700_000), 0)
    }

    func testACostTakesUnitsAcrossGrantsOldestFirst() throws {
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 4), now: start)
        lease.add(grant(3, base: start + 900_000), plan: try plan(now: start, want: 3, need: 1), consumed: 0)
        lease.add(grant(3, base: start + 930_000), plan: try plan(now: start, want: 3, need: 1), consumed: 0)
        XCTAssertTrue(lease.take(cost: 4, now: start))
        XCTAssertEqual(lease.available(at: start), 2)
        XCTAssertEqual(lease.blocks.count, 1, "a spent grant is dropped")
    }

    /// A rate window shorter than three refresh intervals sizes the lease: its held units are
    /// usable for about half a window, and a lease is used within 1.5 of its intervals.
    func testKIsSizedForAThirdOfTheShortestRateWindowWhenThatIsShorterThanTheInterval() throws {
        // The customer's window is 1 s (100/s, burst 100): with a 500 ms interval k covers 333 ms.
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 1), now: start)
        for i in 1...500 { lease.noteDemand(cost: 1, now: start + Int64(i) * 1_000, refreshInterval: 500_000, maxUnits: 1_000) }
        XCTAssertEqual(lease.target, 333, accuracy: 1)
        // Without a rate limit on the path the interval alone sizes it.
        let dayOnly = try QuotaPlan(
            levels: [LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 1_000_000))], oem: acme, cost: 1, now: start,
            lease: QuotaLeaseRequest(customer: contoso, want: 1, need: 1)
        )
        var calendar = QuotaLease(customer: contoso, plan: dayOnly, now: start)
        for i in 1...500 { calendar.noteDemand(cost: 1, now: start + Int64(i) * 1_000, refreshInterval: 500_000, maxUnits: 1_000) }
        XCTAssertEqual(calendar.target, 500, accuracy: 1)
        XCTAssertEqual(QuotaLease.sizingInterval(refreshInterval: 100_000, plan: try plan(now: start, want: 1)), 100_000, "shorter than a third of 1 s")
    }

    /// The interval a lease is sized for follows the plan of its latest grant: limits changed
    /// on the path (a shorter rate window) shorten it from that grant on.
    func testTheSizingIntervalFollowsThePlanOfTheLatestGrant() throws {
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 1), now: start)
        XCTAssertEqual(lease.sizingInterval(refreshInterval: 500_000), 333_333, "a third of the 1 s window of 100 a second, burst 100")
        XCTAssertEqual(lease.sizingInterval(refreshInterval: 100_000), 100_000)
        // 100 a second with a burst of 10: a 100 ms window.
        let shorter = try QuotaPlan(
            levels: [LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 10, perDay: 1_000))], oem: acme, cost: 1,
            now: start + 1, lease: QuotaLeaseRequest(customer: contoso, want: 5, need: 1)
        )
        lease.add(grant(5, base: start + 10_000), plan: shorter, consumed: 1)
        XCTAssertEqual(lease.sizingInterval(refreshInterval: 500_000), 33_333)
        XCTAssertEqual(lease.sizingInterval(refreshInterval: 500_000), QuotaLease.sizingInterval(refreshInterval: 500_000, plan: shorter))
        // Without a rate limit on the path, the refresh interval alone.
        let dayOnly = try QuotaPlan(
            levels: [LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 1_000))], oem: acme, cost: 1, now: start + 2,
            lease: QuotaLeaseRequest(customer: contoso, want: 5, need: 1)
        )
        lease.add(QuotaLeaseGrant(units: 5, remaining: [], rateBases: [nil]), plan: dayOnly, consumed: 1)
        XCTAssertEqual(lease.sizingInterval(refreshInterval: 500_000), 500_000)
    }

    func testKFollowsTheObservedRateTimesTheRefreshIntervalWithinItsBounds() {
        var lease = QuotaLease(customer: contoso, plan: try! plan(now: start, want: 1), now: start)
        // 5 requests a second: fewer than one per interval, k stays 1 (one request, one ask).
        for i in 1...10 { lease.noteDemand(cost: 1, now: start + Int64(i) * 200_000, refreshInterval: 100_000, maxUnits: 50) }
        XCTAssertEqual(lease.target, 1)
        // 300 a second: 30 per 100 ms.
        for i in 1...300 { lease.noteDemand(cost: 1, now: start + 2_000_000 + Int64(i) * 3_333, refreshInterval: 100_000, maxUnits: 50) }
        XCTAssertEqual(lease.target, 30, accuracy: 1)
        // 5000 a second: bounded by maxUnits.
        for i in 1...1_000 { lease.noteDemand(cost: 1, now: start + 3_100_000 + Int64(i) * 200, refreshInterval: 100_000, maxUnits: 50) }
        XCTAssertEqual(lease.target, 50)
    }

    func testAReturnGivesBackEveryUnusedUnitToTheDayAndTheLiveTailToTheRate() throws {
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 10), now: start)
        lease.add(grant(10, base: start + 20_000), plan: try plan(now: start, want: 10), consumed: 2)
        let returned = try XCTUnwrap(lease.returnPlan(now: start + 35_000, share: 4)?.lease)
        XCTAssertEqual(returned.want, 0)
        XCTAssertEqual(returned.giveBack, 8, "the 8 held units, 2 of them lapsed")
        // Units 4...9 of the grant are still live: the TAT the grant set (start + 100 ms) goes back to start + 40 ms.
        XCTAssertEqual(returned.rateGiveBack, [.init(expectedTAT: start + 100_000, returnedTAT: start + 40_000)])
        XCTAssertEqual(returned.usage, QuotaUsage())
    }

    func testAfterItsDayALeaseGivesItsUnitsBackToThatDayAndMonth() throws {
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 10), now: start)
        lease.add(grant(10, base: start + 10_000), plan: try plan(now: start, want: 10), consumed: 1)
        let nextDay = start + 9 * 3_600_000_000
        let returned = try XCTUnwrap(lease.returnPlan(now: nextDay, share: 4))
        XCTAssertEqual(returned.lease?.giveBack, 9)
        XCTAssertEqual(returned.lease?.rateGiveBack, [], "lapsed long ago")
        XCTAssertEqual(returned.period.dayStamp, "20251124", "the keys of the grant's day and month")
    }

    func testUnitsOfADayThatIsOverAreNeverGivenBackToTheNextOne() throws {
        let nextDay = start + 9 * 3_600_000_000
        var lease = QuotaLease(customer: contoso, plan: try plan(now: start, want: 10), now: start)
        lease.add(grant(10, base: start + 10_000), plan: try plan(now: start, want: 10), consumed: 1)
        // A grant of the next day (asked after midnight) replaces what was held.
        lease.add(grant(4, base: nextDay + 10_000), plan: try plan(now: nextDay, want: 4), consumed: 1)
        XCTAssertEqual(lease.unusedUnits, 3)
        // A grant of the day before, arriving late, adds nothing.
        lease.add(grant(10, base: start + 10_000), plan: try plan(now: start, want: 10, need: 1), consumed: 0)
        XCTAssertEqual(lease.unusedUnits, 3)
        XCTAssertEqual(lease.returnPlan(now: nextDay + 1_000, share: 4)?.period.dayStamp, "20251125")
    }

    // MARK: The gate with leases

    private func admit(_ gate: inout QuotaGate, cost: Int = 1, now: Int64, store: QuotaStoreState = .reachable) -> QuotaGate.Answer {
        gate.admit(levels: self.levels, oem: self.acme, customer: self.contoso, cost: cost, now: now, store: store, failMode: .closed) {
            try QuotaPlan(levels: self.levels, oem: self.acme, cost: cost, now: now)
        }
    }

    func testTheFirstRequestAsksThenTheLeaseAdmitsWithoutTheStore() throws {
        var gate = QuotaGate(leases: self.settings)
        guard case .askStore(let asked) = admit(&gate, now: start) else { return XCTFail("the first request asks the store") }
        XCTAssertEqual(asked.lease?.want, 1, "no rate observed yet: k = 1, as without leases")
        XCTAssertEqual(asked.lease?.need, 1)
        // The store grants more than asked here, as a refill would have: the rest is held.
        guard case .admitted = gate.storeAnswered(.success(.leased(grant(5, base: start + 10_000))), plan: asked, failMode: .closed) else {
            return XCTFail("granted")
        }
        for i in 1...4 {
            guard case .admitted(let plan, let headers) = admit(&gate, now: start + Int64(i) * 1_000) else { return XCTFail("from the lease") }
            XCTAssertTrue(plan.inflightKeys.isEmpty, "nothing to release")
            XCTAssertFalse(headers.isEmpty, "RateLimit headers still go out")
        }
        guard case .askStore = admit(&gate, now: start + 5_000) else { return XCTFail("the lease is spent") }
    }

    /// An admission from a lease answers what the levels had left at the grant plus the units
    /// still held: the same fields as `QuotaLease.remaining(at:)` gives.
    func testAnAdmissionFromALeaseAnswersTheUnitsHeldInItsRateLimitFields() throws {
        var gate = QuotaGate(leases: self.settings)
        guard case .askStore(let asked) = admit(&gate, now: start) else { return XCTFail("the first request asks the store") }
        _ = gate.storeAnswered(.success(.leased(grant(5, base: start + 10_000))), plan: asked, failMode: .closed)
        guard case .admitted(let plan, let headers) = admit(&gate, now: start + 1_000) else { return XCTFail("from the lease") }
        let lease = try XCTUnwrap(gate.leases.lease(of: contoso))
        XCTAssertEqual(lease.available(at: start + 1_000), 3)
        let expected = RateLimitHeaders.fields(for: .admitted(lease.remaining(at: start + 1_000)), plan: plan)
        XCTAssertEqual(headers.map(\.name), expected.map(\.name))
        XCTAssertEqual(headers.map(\.value), expected.map(\.value))
        // 95 left at the grant, 3 held: the customer's rate is the tightest limit (98 of 100).
        XCTAssertEqual(headers.first { $0.name == "RateLimit" }?.value, "\"customer-rate\";r=98;t=0")
    }

    func testALeaseRunningLowIsRefilledOffTheRequestPath() throws {
        var gate = QuotaGate(leases: self.settings)
        var now = start
        // 200 requests a second for 200 ms (no refills sent here): k becomes 20, leases of 20 are asked for.
        var asks = 0
        for _ in 0..<40 {
            switch admit(&gate, now: now) {
            case .askStore(let plan):
                let units = try XCTUnwrap(plan.lease?.want)
                _ = gate.storeAnswered(.success(.leased(grant(units, base: now + 10_000))), plan: plan, failMode: .closed)
                asks += 1
            case .admitted: break
            default: XCTFail("unexpected answer")
            }
            now += 5_000
        }
        XCTAssertEqual(gate.leases.lease(of: contoso)?.target, 20)
        let work = gate.leaseWork(now: now)
        // Either the lease ran low and a refill is due, or it holds enough.
        let held = gate.leases.lease(of: contoso)?.available(at: now) ?? 0
        if held * 2 <= 20 {
            let refill = try XCTUnwrap(work.first?.lease)
            XCTAssertEqual(refill.want, 20)
            XCTAssertEqual(refill.need, 0, "a refill takes what the levels can spare, possibly nothing")
            XCTAssertGreaterThan(refill.usage.requests, 0, "the usage admitted locally rides along")
            gate.leaseAnswered(.success(.leased(grant(20, base: now))), plan: work[0], now: now)
            XCTAssertEqual(gate.leases.lease(of: contoso)?.available(at: now), held + 20)
        }
        XCTAssertEqual(asks, 4, "one ask per request until 2 units after the first measured k = 20, then a lease of 20 at a time (refills are not sent here)")
    }

    /// A customer starting at 45 requests a second, with the default refresh interval: its
    /// first three requests ask Redis, then leases admit it. (Sized only once 8 units had
    /// come, it asked for its first 9.)
    func testACustomerStartingAsksForItsFirstThreeRequestsOnly() throws {
        var gate = QuotaGate(leases: QuotaLeaseSettings(refreshInterval: 500_000, maxUnits: 1_000, share: 4, idleAfter: 1_000_000, capacity: 2))
        var asked: [Int] = []
        for index in 0..<90 {
            let now = start + Int64(index) * 22_222
            for work in gate.leaseWork(now: now) {
                let units = try XCTUnwrap(work.lease?.want)
                gate.leaseAnswered(.success(.leased(grant(units, base: now + 500_000))), plan: work, now: now)
            }
            switch admit(&gate, now: now) {
            case .askStore(let plan):
                asked.append(index)
                let units = try XCTUnwrap(plan.lease?.want)
                guard case .admitted = gate.storeAnswered(.success(.leased(grant(units, base: now + 500_000))), plan: plan, failMode: .closed) else {
                    return XCTFail("granted")
                }
            case .admitted: break
            default: XCTFail("unexpected answer")
            }
        }
        XCTAssertEqual(asked, [0, 1, 2], "2 s at 45 requests a second")
        // 2 units in 44 ms: 45 a second × a third of the 1 s window.
        XCTAssertEqual(gate.leases.lease(of: contoso)?.target ?? 0, 15, accuracy: 1)
    }

    /// A grant's held units lapse within a few ms of one another when the emission interval is
    /// short. A customer that slowed after its grant has its refill asked before they lapse,
    /// not by the first request after.
    func testUnitsAboutToLapseAreRefilledBeforeTheyDo() throws {
        // 10,000 a second: T = 100 µs, so 19 held units lapse within 2 ms.
        let fast = [LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 10_000, burst: 10_000, perDay: 1_000_000))]
        var gate = QuotaGate(leases: self.settings)
        func admit(at now: Int64) throws -> Bool {
            for work in gate.leaseWork(now: now) {
                let units = try XCTUnwrap(work.lease?.want)
                gate.leaseAnswered(.success(.leased(grant(units, base: now + 150_000))), plan: work, now: now)
            }
            let answer = gate.admit(levels: fast, oem: acme, customer: contoso, cost: 1, now: now, store: .reachable, failMode: .closed) {
                try QuotaPlan(levels: fast, oem: self.acme, cost: 1, now: now)
            }
            guard case .askStore(let plan) = answer else { return false }
            let units = try XCTUnwrap(plan.lease?.want)
            _ = gate.storeAnswered(.success(.leased(grant(units, base: now + 150_000))), plan: plan, failMode: .closed)
            return true
        }
        // 200 a second for 10 ms: k = 20; the third request's grant holds 19 units, usable
        // until 160 ms.
        XCTAssertEqual(try [0, 5_000, 10_000].map { try admit(at: start + $0) }, [true, true, true])
        XCTAssertEqual(gate.leases.lease(of: contoso)?.available(at: start + 10_000), 19)
        // Then one request every 50 ms: at 160 ms the 17 units left lapse within 25 ms (a
        // quarter of the interval), so that request queues a refill.
        XCTAssertEqual(try [60_000, 110_000, 160_000].map { try admit(at: start + $0) }, [false, false, false])
        XCTAssertFalse(try admit(at: start + 210_000), "the refill came before the units lapsed: admitted from the lease")
        XCTAssertEqual(gate.leases.lease(of: contoso)?.expiredUnits, 16, "the lapsed units go back with the next grant or return")
    }

    func testAnIdleLeaseIsGivenBackAndForgotten() throws {
        var gate = QuotaGate(leases: self.settings)
        guard case .askStore(let asked) = admit(&gate, now: start) else { return XCTFail() }
        _ = gate.storeAnswered(.success(.leased(grant(5, base: start + 400_000))), plan: asked, failMode: .closed)
        XCTAssertTrue(gate.leaseWork(now: start + 10_000).isEmpty, "busy: nothing to give back")
        let work = gate.leaseWork(now: start + 1_100_000)
        XCTAssertEqual(work.count, 1)
        XCTAssertEqual(work.first?.lease?.want, 0)
        XCTAssertEqual(work.first?.lease?.giveBack, 4)
        XCTAssertEqual(work.first?.lease?.usage, QuotaUsage(), "the request that asked was metered by the script")
        XCTAssertEqual(gate.leases.count, 0)
    }

    func testReloadAndShutdownGiveEveryLeaseBack() throws {
        var gate = QuotaGate(leases: self.settings)
        guard case .askStore(let asked) = admit(&gate, now: start) else { return XCTFail() }
        _ = gate.storeAnswered(.success(.leased(grant(5, base: start + 10_000))), plan: asked, failMode: .closed)
        gate.limitsChanged()
        XCTAssertEqual(gate.leases.count, 0)
        XCTAssertEqual(gate.leaseWork(now: start + 1_000).map { $0.lease?.giveBack }, [4])

        guard case .askStore(let again) = admit(&gate, now: start + 2_000) else { return XCTFail() }
        _ = gate.storeAnswered(.success(.leased(grant(3, base: start + 12_000))), plan: again, failMode: .closed)
        XCTAssertEqual(gate.returnLeases(now: start + 2_000).map { $0.lease?.giveBack }, [2])
    }

    func testWithoutTheStoreHeldUnitsAreAdmittedThenTheFailModeDecides() throws {
        var gate = QuotaGate(leases: self.settings)
        guard case .askStore(let asked) = admit(&gate, now: start) else { return XCTFail() }
        _ = gate.storeAnswered(.success(.leased(grant(3, base: start + 500_000))), plan: asked, failMode: .closed)
        let away = QuotaStoreState.unreachable(reason: "redis unavailable")
        for _ in 0..<2 {
            guard case .admitted = admit(&gate, now: start + 1_000, store: away) else { return XCTFail("held units are admitted") }
        }
        guard case .refuseStoreAway = admit(&gate, now: start + 1_000, store: away) else { return XCTFail("then fail closed") }
    }

    func testAnAskWhoseAnswerNeverCameIsForgottenAfterTheIdleInterval() throws {
        var gate = QuotaGate(leases: self.settings)
        guard case .askStore(let first) = admit(&gate, now: start) else { return XCTFail() }
        _ = gate.storeAnswered(.success(.leased(grant(1, base: start + 10_000))), plan: first, failMode: .closed)
        // The next ask's request goes away: its answer never comes. Meanwhile every request
        // (100 a second) asks for itself alone.
        var now = start
        for _ in 0..<99 {
            now += 10_000
            guard case .askStore(let alone) = admit(&gate, now: now) else { return XCTFail() }
            XCTAssertEqual(alone.lease?.want, 1)
        }
        XCTAssertEqual(gate.leases.lease(of: contoso)?.asking, true)
        XCTAssertEqual(gate.leases.lease(of: contoso)?.target, 10)
        // A second after the lost ask it no longer holds the lease back: a lease of k is asked.
        guard case .askStore(let fresh) = admit(&gate, now: start + 1_010_000) else { return XCTFail() }
        XCTAssertEqual(fresh.lease?.want, 10)
    }

    func testConcurrencyLimitsAreNeverLeased() throws {
        var gate = QuotaGate(leases: self.settings)
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 100, concurrency: 5))]
        let answer = gate.admit(levels: levels, oem: acme, customer: contoso, cost: 1, now: start, store: .reachable, failMode: .closed) {
            try QuotaPlan(levels: levels, oem: self.acme, cost: 1, now: self.start)
        }
        guard case .askStore(let plan) = answer else { return XCTFail() }
        XCTAssertNil(plan.lease, "each request is admitted and released in the store")
    }

    func testTheBookHoldsAtMostItsCapacity() throws {
        var gate = QuotaGate(leases: self.settings)
        for name in ["a", "b", "c"] {
            let customer = try NodeID(name)
            let levels = [LevelLimits(node: customer, kind: .customer, limits: Limits(perDay: 10))]
            let answer = gate.admit(levels: levels, oem: acme, customer: customer, cost: 1, now: start, store: .reachable, failMode: .closed) {
                try QuotaPlan(levels: levels, oem: self.acme, cost: 1, now: self.start)
            }
            guard case .askStore(let plan) = answer else { return XCTFail() }
            if name == "c" {
                XCTAssertNil(plan.lease, "past the capacity a customer is admitted per request")
            } else {
                let grant = QuotaLeaseGrant(units: 2, remaining: [], rateBases: [nil])
                _ = gate.storeAnswered(.success(.leased(grant)), plan: plan, failMode: .closed)
            }
        }
        XCTAssertEqual(gate.leases.count, 2)
    }
}

/// What the lease book costs in memory: 100,000 customers with a lease held on one event loop,
/// each on a three-level path (customer, partner, OEM) with rate and day limits. A measurement
/// (printed, and quoted in docs/operations.md), held only to a generous bound.
final class QuotaLeaseMemoryTests: XCTestCase {
    private func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testTheBookOf100000CustomersLeases() throws {
        let count = 100_000
        let start: Int64 = 1_764_000_000_000_000
        let acme = try NodeID("acme")
        let partner = try NodeID("northwind")
        let shared = [
            LevelLimits(node: partner, kind: .partner, limits: Limits(ratePerSecond: 1_000_000, burst: 1_000_000, perDay: 1_000_000_000)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(ratePerSecond: 500_000, burst: 500_000)),
        ]
        // The paths' limits are the configuration snapshot's, made before the measurement.
        let paths = try (0..<count).map { index in
            let customer = try NodeID("customer-\(index)")
            return (customer, [LevelLimits(node: customer, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 100, perDay: 100_000))] + shared)
        }
        let before = self.residentBytes()
        var gate = QuotaGate(leases: QuotaLeaseSettings(capacity: count))
        for (customer, levels) in paths {
            let answer = gate.admit(levels: levels, oem: acme, customer: customer, cost: 1, now: start, store: .reachable, failMode: .open) {
                try QuotaPlan(levels: levels, oem: acme, cost: 1, now: start, usage: (customer, 400))
            }
            guard case .askStore(let plan) = answer else { return XCTFail("asked: \(answer)") }
            let remaining = levels.map {
                LevelRemaining(node: $0.node, kind: $0.kind, rate: 90, rateResetMilliseconds: 100, day: 1_000, month: nil, concurrency: nil)
            }
            let grant = QuotaLeaseGrant(units: 10, remaining: remaining, rateBases: [start + 10_000, start, start])
            _ = gate.storeAnswered(.success(.leased(grant)), plan: plan, failMode: .open)
        }
        XCTAssertEqual(gate.leases.count, count)
        let perLease = Double(self.residentBytes() - before) / Double(count)
        print("lease book: \(count) leases held, \(Int(perLease)) bytes of resident memory per lease")
        XCTAssertLessThan(perLease, 16_384)
        // Idle, every lease is given back and forgotten.
        XCTAssertEqual(gate.leaseWork(now: start + 2_000_000).count, count)
        XCTAssertEqual(gate.leases.count, 0)
    }
}
