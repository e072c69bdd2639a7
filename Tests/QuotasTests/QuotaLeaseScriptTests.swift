@testable import Hierarchy
import NIOCore
import NIOPosix
@testable import Quotas
import RedisClient
import RedisTestServer
import XCTest

/// The lease script against a real redis-server, and several gates — as many gateway nodes —
/// leasing from it on one virtual clock: what they admit together never passes any level's
/// limit, checked against a reference GCRA over every admission. No sleeps.
final class QuotaLeaseScriptTests: RedisQuotaTestCase {
    override var usageRetentionDays: Int? { 30 }

    private func ask(_ levels: [LevelLimits], want: Int, need: Int = 1, now: Int64, giveBack: Int = 0,
                     rateGiveBack: [QuotaLeaseRequest.RateGiveBack?] = [], usage: QuotaUsage = QuotaUsage()) throws -> QuotaDecision? {
        let request = QuotaLeaseRequest(customer: contoso, want: want, need: need, giveBack: giveBack, rateGiveBack: rateGiveBack, usage: usage)
        let plan = try self.quotas.plan(levels: levels, oem: acme, cost: max(need, 1), now: now, meter: contoso).leasing(request, cost: max(need, 1), now: now)
        guard want > 0 else {
            try self.quotas.send([plan], on: self.loop).wait()
            return nil
        }
        return try self.quotas.admit(plan, on: self.loop).wait()
    }


    func testScriptSHAIsRedisOwn() throws {
        XCTAssertEqual(try self.redis.send(on: self.loop, ["SCRIPT", "LOAD", QuotaScript.lease]).wait().string, QuotaScript.leaseSHA)
    }

    func testAGrantChargesEveryLevelByItsUnitsAndTakesAtMostAShareOfWhatIsLeft() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 100, perDay: 1_000)),
            LevelLimits(node: northwind, kind: .partner, limits: Limits(perDay: 50)),
        ]
        // The partner has 50 left: one grant takes at most a quarter of it.
        guard case .leased(let grant) = try ask(levels, want: 40, now: start) else { return XCTFail("not granted") }
        XCTAssertEqual(grant.units, 12)
        XCTAssertEqual(grant.rateBases, [start, nil])
        XCTAssertEqual(grant.remaining.map(\.day), [988, 38])
        XCTAssertEqual(grant.remaining.map(\.rate), [88, nil])
        XCTAssertEqual(try get("erp:q:{acme}:contoso:rate"), start + 120_000)
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 12)
        XCTAssertEqual(try get("erp:q:{acme}:northwind:day:20251124"), 12)
        // The second base is where the first grant left the rate limit.
        guard case .leased(let second) = try ask(levels, want: 40, now: start) else { return XCTFail("not granted") }
        XCTAssertEqual(second.units, 9, "a quarter of the 38 left")
        XCTAssertEqual(second.rateBases, [start + 120_000, nil])
    }

    func testNearTheEndOfABudgetARefillIsGrantedNothingAndRequestsAskForThemselves() throws {
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 10))]
        guard case .leased(let first) = try ask(levels, want: 5, need: 0, now: start) else { return XCTFail("not granted") }
        XCTAssertEqual(first.units, 2, "a refill takes a quarter of the 10 left")
        for _ in 0..<4 { _ = try ask(levels, want: 5, need: 0, now: start) }
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 7, "2 + 2 + 1 + 1 + 1: then fewer than 4 are left")
        guard case .leased(let nothing) = try ask(levels, want: 5, need: 0, now: start) else { return XCTFail("refused") }
        XCTAssertEqual(nothing.units, 0)
        guard case .leased(let request) = try ask(levels, want: 5, need: 1, now: start) else { return XCTFail("refused a request that fits") }
        XCTAssertEqual(request.units, 1, "a request still gets its cost")
    }

    func testARefusedGrantChargesNothingAndAnswersAsAnAdmission() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(perDay: 100)),
            LevelLimits(node: acme, kind: .oem, limits: Limits(perDay: 2)),
        ]
        guard case .leased(let grant) = try ask(levels, want: 5, need: 2, now: start) else { return XCTFail("not granted") }
        XCTAssertEqual(grant.units, 2, "the request that asked gets its cost, even above the share")
        let refusal = try ask(levels, want: 5, need: 1, now: start)
        let admission = try self.quotas.admit(levels: levels, oem: acme, cost: 1, now: start, on: self.loop).wait().1
        XCTAssertEqual(refusal, admission)
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 2)
        let refused = try self.redis.send(on: self.loop, ["HGET", "erp:usage:{acme}:contoso:20251124", "refused"]).wait()
        XCTAssertTrue(refused.isNull, "a refill's refusal is no request's")
    }

    func testAGiveBackReturnsDayUnitsAndTheRateTailOnlyIfNothingWasChargedSince() throws {
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 100, perDay: 1_000))]
        guard case .leased(let grant) = try ask(levels, want: 10, now: start), grant.units == 10 else { return XCTFail("not granted") }
        // 3 units used; 7 given back, the rate from unit 3 on.
        _ = try ask(levels, want: 0, need: 0, now: start + 20_000, giveBack: 7,
                    rateGiveBack: [.init(expectedTAT: start + 100_000, returnedTAT: start + 30_000)], usage: QuotaUsage(requests: 3, cost: 3))
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 3)
        XCTAssertEqual(try get("erp:q:{acme}:contoso:rate"), start + 30_000)
        XCTAssertEqual(try self.redis.send(on: self.loop, ["HGET", "erp:usage:{acme}:contoso:20251124", "requests"]).wait().string, "3")

        // Another grant moved the TAT on: a stale rate give-back changes nothing, day units still go back.
        guard case .leased = try ask(levels, want: 5, now: start + 20_000) else { return XCTFail("not granted") }
        _ = try ask(levels, want: 0, need: 0, now: start + 20_000, giveBack: 100,
                    rateGiveBack: [.init(expectedTAT: start + 30_000, returnedTAT: start)])
        XCTAssertEqual(try get("erp:q:{acme}:contoso:rate"), start + 80_000)
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 0, "never below zero")

        // A counter that is gone (its day expired, or it never existed) is not made anew,
        // without a TTL, by a give-back.
        _ = try self.redis.send(on: self.loop, ["DEL", "erp:q:{acme}:contoso:day:20251124"]).wait()
        _ = try ask(levels, want: 0, need: 0, now: start + 20_000, giveBack: 5)
        XCTAssertEqual(try self.redis.send(on: self.loop, ["EXISTS", "erp:q:{acme}:contoso:day:20251124"]).wait().int64, 0)
    }

    // MARK: Several nodes on one virtual clock

    /// One gate per node; asks answered by the real script, refills and give-backs sent every
    /// 20 ms of virtual time. Returns every admission (instant, customer, cost) and how many
    /// commands the gates sent.
    private func run(
        nodes: Int, steps: Int, stepMicroseconds: Int64, settings: QuotaLeaseSettings,
        demand: (_ node: Int, _ step: Int) -> [(customer: NodeID, levels: [LevelLimits], cost: Int)]
    ) throws -> (admitted: [(now: Int64, customer: NodeID, cost: Int)], commands: Int) {
        var gates = Array(repeating: QuotaGate(leases: settings), count: nodes)
        var admitted: [(now: Int64, customer: NodeID, cost: Int)] = []
        var commands = 0
        var refusals: [String: Int] = [:]
        defer { print("refusals: \(refusals)") }
        for step in 0..<steps {
            let now = start + Int64(step) * stepMicroseconds
            for node in 0..<nodes {
                for (customer, levels, cost) in demand(node, step) {
                    var answer = gates[node].admit(
                        levels: levels, oem: acme, customer: customer, cost: cost, now: now, store: .reachable, failMode: .closed
                    ) { try self.quotas.plan(levels: levels, oem: self.acme, cost: cost, now: now, meter: customer) }
                    if case .askStore(let plan) = answer {
                        commands += 1
                        answer = gates[node].storeAnswered(.success(try self.quotas.admit(plan, on: self.loop).wait()), plan: plan, failMode: .closed)
                    }
                    switch answer {
                    case .admitted: admitted.append((now, customer, cost))
                    case .refuse(let refusal): refusals[refusal.reason + " \(refusal.source)", default: 0] += 1
                    default: XCTFail("unexpected answer \(answer)")
                    }
                }
                if step % 20 == 0 || step == steps - 1 {
                    let plans = step == steps - 1 ? gates[node].returnLeases(now: now) : gates[node].leaseWork(now: now)
                    commands += plans.count
                    for plan in plans where plan.lease?.want ?? 0 > 0 {
                        gates[node].leaseAnswered(Result { try self.quotas.admit(plan, on: self.loop).wait() }, plan: plan, now: now)
                    }
                    try self.quotas.send(plans.filter { $0.lease?.want == 0 }, on: self.loop).wait()
                }
            }
        }
        return (admitted, commands)
    }

    /// Every admission, in time order, conforms to the GCRA of `limit`: nothing passed the rate.
    private func assertConforms(_ admitted: [(now: Int64, customer: NodeID, cost: Int)], to limit: RateLimit, file: StaticString = #filePath, line: UInt = #line) {
        let gcra = GCRA(limit)
        var tat: Int64?
        var over = 0
        for (now, _, cost) in admitted.sorted(by: { $0.now < $1.now }) {
            switch gcra.decide(storedTAT: tat, now: now, cost: cost) {
            case .admitted(let newTAT, _, _): tat = newTAT
            default: over += 1
            }
        }
        XCTAssertEqual(over, 0, "admissions past the rate limit", file: file, line: line)
    }

    func testThreeNodesLeasingOneCustomerNeverPassItsRateAndUseIt() throws {
        let levels = [LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 200, burst: 100))]
        let settings = QuotaLeaseSettings(refreshInterval: 100_000, maxUnits: 100, share: 4)
        // Each node 1 request a millisecond (1000/s, three times 5× the limit) for 10 s.
        let (admitted, commands) = try run(nodes: 3, steps: 10_000, stepMicroseconds: 1_000, settings: settings) { _, _ in
            [(self.contoso, levels, 1)]
        }
        assertConforms(admitted, to: try RateLimit(requests: 200, periodMicroseconds: 1_000_000, burst: 100))
        let limit = 100 + 200 * 10
        print("rate, 3 nodes: admitted \(admitted.count) of \(limit) allowed, \(commands) commands")
        XCTAssertGreaterThanOrEqual(Double(admitted.count), 0.9 * Double(limit), "most of the rate is used")
    }

    func testThreeNodesSharingAPartnersDayBudgetUseItToTheUnitAndNeverMore() throws {
        let partner = [LevelLimits(node: northwind, kind: .partner, limits: Limits(perDay: 2_000))]
        let customers = try (1...4).map { try NodeID("c\($0)") }
        func levels(_ customer: NodeID) -> [LevelLimits] {
            [LevelLimits(node: customer, kind: .customer, limits: Limits(ratePerSecond: 1_000, burst: 1_000, perDay: 10_000))] + partner
        }
        let settings = QuotaLeaseSettings(refreshInterval: 100_000, maxUnits: 200, share: 4)
        // Every node asks for every customer each millisecond: 12 requests a ms, far past the budget.
        let (admitted, commands) = try run(nodes: 3, steps: 1_500, stepMicroseconds: 1_000, settings: settings) { node, step in
            customers.map { customer in (customer, levels(customer), 1) }
        }
        print("partner day, 3 nodes x 4 customers: admitted \(admitted.count) of 2000, \(commands) commands")
        XCTAssertLessThanOrEqual(admitted.count, 2_000, "over the partner's day")
        XCTAssertGreaterThanOrEqual(admitted.count, 1_960, "98 % of the budget used")
        // Leases given back at the end: what Redis counts is exactly what was admitted.
        XCTAssertEqual(try get("erp:q:{acme}:northwind:day:20251124"), Int64(admitted.count))
        var metered = 0
        for customer in customers {
            let reply = try self.redis.send(on: self.loop, ["HGET", "erp:usage:{acme}:\(customer):20251124", "requests"]).wait()
            metered += reply.string.flatMap { Int($0) } ?? 0
        }
        XCTAssertEqual(metered, admitted.count, "usage counts every admitted request")
    }

    /// Held units are booked at most half the rate window ahead, so that a level many leases
    /// share keeps the other half to grant from: with a hold as long as the window, the first
    /// lease used to book a shared partner limit to its end and every other customer's grant
    /// shrank to what time had freed.
    func testHeldUnitsAreBookedAtMostHalfAWindowAheadSoASharedLevelKeepsGranting() throws {
        // Partner: 1,000/s, burst 1,000 (T = 1 ms, window 1 s), shared by two customers.
        let partner = LevelLimits(node: northwind, kind: .partner, limits: Limits(ratePerSecond: 1_000, burst: 1_000))
        let fabrikam = try NodeID("fabrikam")
        func grant(_ customer: NodeID, want: Int) throws -> QuotaLeaseGrant? {
            let levels = [LevelLimits(node: customer, kind: .customer, limits: Limits(perDay: 1_000_000)), partner]
            let request = QuotaLeaseRequest(customer: customer, want: want, need: 0, share: 4, hold: 2_000_000)
            let plan = try self.quotas.plan(levels: levels, oem: acme, cost: 1, now: start, meter: nil).leasing(request, cost: 1, now: start)
            guard case .leased(let grant) = try self.quotas.admit(plan, on: self.loop).wait() else { return nil }
            return grant
        }
        let first = try XCTUnwrap(try grant(contoso, want: 100))
        XCTAssertEqual(first.units, 100)
        XCTAssertEqual(first.rateBases, [nil, start + 500_000], "half the window ahead, not the hold of 2 s")
        let second = try XCTUnwrap(try grant(fabrikam, want: 100))
        XCTAssertEqual(second.units, 100, "the shared level still grants a whole lease")
        XCTAssertEqual(second.rateBases, [nil, start + 600_000], "after the first grant's units")
    }

    /// What one grant costs Redis once the counters exist: one read of every counter, the
    /// charges and the usage, but no TTL set again — a calendar counter's and the usage
    /// record's TTL name the same instant at every charge, so they are set when a charge
    /// creates the key.
    func testARefillOfExistingCountersSetsNoTTLAgainAndNewKeysGetTheirs() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 100, burst: 100, perDay: 1_000)),
            LevelLimits(node: northwind, kind: .partner, limits: Limits(perDay: 5_000, perMonth: 50_000)),
        ]
        guard case .leased = try ask(levels, want: 10, now: start, usage: QuotaUsage(requests: 3, cost: 3)) else { return XCTFail("not granted") }
        // start is 16:00 UTC: the day's counters live until midnight plus the margin, the month's
        // until the month's end plus it, the usage record 30 days past its day.
        let untilMidnight: Int64 = 8 * 3_600
        func ttl(_ key: String) throws -> Int64 { try XCTUnwrap(self.redis.send(on: self.loop, ["TTL", key]).wait().int64) }
        XCTAssertEqual(try ttl("erp:q:{acme}:contoso:day:20251124"), untilMidnight + QuotaPlan.calendarMargin, accuracy: 2)
        XCTAssertEqual(try ttl("erp:q:{acme}:northwind:day:20251124"), untilMidnight + QuotaPlan.calendarMargin, accuracy: 2)
        XCTAssertEqual(try ttl("erp:q:{acme}:northwind:month:202511"), 6 * 86_400 + untilMidnight + QuotaPlan.calendarMargin, accuracy: 2)
        XCTAssertEqual(try ttl("erp:usage:{acme}:contoso:20251124"), 30 * 86_400 + untilMidnight, accuracy: 2)

        _ = try self.redis.send(on: self.loop, ["CONFIG", "RESETSTAT"]).wait()
        guard case .leased = try ask(levels, want: 10, need: 0, now: start + 50_000, usage: QuotaUsage(requests: 5, cost: 5)) else {
            return XCTFail("refill not granted")
        }
        let stats = try XCTUnwrap(self.redis.send(on: self.loop, ["INFO", "commandstats"]).wait().string)
        var calls: [String: Int] = [:]
        for line in stats.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let name = line.dropFirst("cmdstat_".count).prefix { $0 != ":" }
            let count = line.split(separator: ":calls=").dropFirst().first?.prefix { $0.isNumber }
            calls[String(name)] = count.flatMap { Int($0) }
        }
        XCTAssertNil(calls["expire"], "no TTL set again on counters that have one: \(calls)")
        XCTAssertEqual(calls["mget"], 1, "the counters read in one command: \(calls)")
        XCTAssertNil(calls["get"], "\(calls)")
        // 1 read, 1 rate set, 3 charges, 2 usage fields.
        XCTAssertEqual(calls.filter { $0.key != "evalsha" && $0.key != "config|resetstat" }.values.reduce(0, +), 7, "\(calls)")
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 20, "both grants charged")
    }

    func testSteadyDemandBelowTheLimitsCostsFewCommandsPerRequest() throws {
        let levels = [
            LevelLimits(node: contoso, kind: .customer, limits: Limits(ratePerSecond: 10_000, burst: 10_000, perDay: 100_000_000)),
            LevelLimits(node: northwind, kind: .partner, limits: Limits(ratePerSecond: 20_000, burst: 20_000)),
        ]
        let settings = QuotaLeaseSettings(refreshInterval: 100_000, maxUnits: 1_000, share: 4)
        // Each node 2 requests a millisecond (2000/s) for 3 s: k = 200.
        let (admitted, commands) = try run(nodes: 3, steps: 3_000, stepMicroseconds: 1_000, settings: settings) { _, _ in
            [(self.contoso, levels, 1), (self.contoso, levels, 1)]
        }
        XCTAssertEqual(admitted.count, 18_000, "nothing refused below the limits")
        print("steady, 3 nodes: \(commands) commands for \(admitted.count) admissions")
        XCTAssertLessThan(Double(commands) / Double(admitted.count), 0.05)
        assertConforms(admitted, to: try RateLimit(requests: 10_000, periodMicroseconds: 1_000_000, burst: 10_000))
        XCTAssertEqual(try get("erp:q:{acme}:contoso:day:20251124"), 18_000, "every unused unit went back")
    }
}
