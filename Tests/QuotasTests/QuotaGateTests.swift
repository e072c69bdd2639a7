@testable import Hierarchy
import XCTest
@testable import Quotas

/// The admission policy as values: every fail mode against every state of the store (reachable,
/// known down before asking, failing after the plan was sent), with and without a remembered
/// refusal, and a tenant without limits. Instants are explicit; nothing sleeps.
final class QuotaGateTests: XCTestCase {
    /// The policy names are literals; they must spell what the header's grammar says for every
    /// level and quota.
    func testEveryPolicyNameIsItsLevelAndQuotaQuoted() {
        for level in NodeKind.allCases {
            for kind in QuotaKind.allCases {
                XCTAssertEqual(RateLimitHeaders.policyName(level, kind), "\"\(level.rawValue)-\(kind.rawValue)\"")
            }
        }
    }

    private let contoso = try! NodeID("contoso")
    private let acme = try! NodeID("acme")
    /// 2025-11-24T16:00:00Z.
    private let start: Int64 = 1_764_000_000_000_000

    /// One request per second, a burst of two.
    private var levels: [LevelLimits] {
        [LevelLimits(node: self.contoso, kind: .customer, limits: Limits(ratePerSecond: 1, burst: 2))]
    }

    private func plan(now: Int64? = nil) throws -> QuotaPlan {
        try QuotaPlan(levels: self.levels, oem: self.acme, cost: 1, now: now ?? self.start)
    }

    /// What the store answers once the burst is spent.
    private var storeRefusal: QuotaDecision {
        .refused(level: self.contoso, kind: .rate, retryAfterMilliseconds: 1000, limit: 2, remaining: 0, resetAfterMicroseconds: 2_000_000)
    }

    private struct ConnectionLost: Error, CustomStringConvertible {
        var description: String { "connection closed" }
    }

    /// How the store stands when a request arrives: reachable and answering, known to be down
    /// before anything is sent, or failing the command after it was sent.
    private enum Store: CaseIterable {
        case reachable, unreachable, failsAfterSending
    }

    /// The gate's answer for one request, with the store's answer given back when the gate
    /// asks for it. Counts how often the plan was built and the store's state read.
    private func answer(
        _ gate: inout QuotaGate, store: Store, mode: QuotaFailMode, levels: [LevelLimits]? = nil, now: Int64? = nil,
        storeDecision: QuotaDecision = .admitted([]), planBuilds: inout Int, storeReads: inout Int
    ) throws -> QuotaGate.Answer {
        let now = now ?? self.start
        let plan = try self.plan(now: now)
        let state: QuotaStoreState = store == .unreachable ? .unreachable(reason: "redis unavailable") : .reachable
        var reads = 0
        var builds = 0
        let first = gate.admit(
            levels: levels ?? self.levels, oem: self.acme, customer: self.contoso, cost: 1, now: now,
            store: { reads += 1; return state }(), failMode: mode
        ) {
            builds += 1
            return plan
        }
        planBuilds += builds
        storeReads += reads
        guard case .askStore(let asked) = first else { return first }
        XCTAssertEqual(asked, plan)
        let result: Result<QuotaDecision, any Error> = store == .failsAfterSending ? .failure(ConnectionLost()) : .success(storeDecision)
        return gate.storeAnswered(result, plan: asked, failMode: mode)
    }

    private func answer(
        _ gate: inout QuotaGate, store: Store, mode: QuotaFailMode, levels: [LevelLimits]? = nil, now: Int64? = nil,
        storeDecision: QuotaDecision = .admitted([])
    ) throws -> QuotaGate.Answer {
        var builds = 0
        var reads = 0
        return try self.answer(&gate, store: store, mode: mode, levels: levels, now: now, storeDecision: storeDecision, planBuilds: &builds, storeReads: &reads)
    }

    /// A gate that has seen the store refuse the tenant at `start`.
    private func gateRememberingARefusal() throws -> QuotaGate {
        var gate = QuotaGate()
        let answer = gate.storeAnswered(.success(self.storeRefusal), plan: try self.plan(), failMode: .open)
        guard case .refuse(let refusal) = answer else {
            XCTFail("the store's refusal was not passed on: \(answer)")
            return gate
        }
        XCTAssertEqual(refusal.source, .store)
        XCTAssertEqual(refusal.reason, "rate limit of contoso")
        XCTAssertEqual(gate.overLimit.count, 1)
        XCTAssertTrue(gate.pendingRefusals.isEmpty, "the store meters its own refusals")
        return gate
    }

    // MARK: - No limits

    func testATenantWithoutLimitsProceedsWithoutAPlanWhateverTheStoreAndMode() throws {
        for mode in QuotaFailMode.allCases {
            for store in Store.allCases {
                var gate = try self.gateRememberingARefusal()
                var builds = 0
                var reads = 0
                let answer = try self.answer(&gate, store: store, mode: mode, levels: [], planBuilds: &builds, storeReads: &reads)
                XCTAssertEqual(answer, .proceed, "\(mode), \(store)")
                XCTAssertEqual(builds, 0, "\(mode), \(store)")
                XCTAssertEqual(reads, 0, "\(mode), \(store)")
                XCTAssertTrue(gate.pendingRefusals.isEmpty)
            }
        }
    }

    // MARK: - Remembered refusals

    func testARememberedRefusalAnswersBeforeAnyPlanOrStoreInEveryMode() throws {
        for mode in QuotaFailMode.allCases {
            for store in Store.allCases {
                var gate = try self.gateRememberingARefusal()
                var builds = 0
                var reads = 0
                let answer = try self.answer(&gate, store: store, mode: mode, now: self.start + 1, planBuilds: &builds, storeReads: &reads)
                guard case .refuse(let refusal) = answer else {
                    XCTFail("\(mode), \(store): \(answer)")
                    continue
                }
                XCTAssertEqual(refusal.source, .memory)
                XCTAssertEqual(refusal.reason, "over limit (remembered)")
                XCTAssertEqual(refusal.headers.first { $0.name.lowercased() == "retry-after" }?.value, "1")
                XCTAssertEqual(builds, 0, "\(mode), \(store): a flood costs no plan")
                XCTAssertEqual(reads, 0, "\(mode), \(store)")
                XCTAssertFalse(gate.pendingRefusals.isEmpty, "refused without the store: metered by the gateway")
            }
        }
    }

    func testARememberedRefusalLetsThroughOnceTheLimitCouldAdmit() throws {
        var gate = try self.gateRememberingARefusal()
        // The store booked the limit 2 s ahead; one request fits again after a second.
        XCTAssertEqual(try self.answer(&gate, store: .reachable, mode: .closed, now: self.start + 1_000_000), .admitted(try self.plan(now: self.start + 1_000_000), rateLimitHeaders: []))
    }

    // MARK: - Store reachable

    func testAReachableStoreDecidesInEveryMode() throws {
        let admitted = QuotaDecision.admitted([
            LevelRemaining(node: self.contoso, kind: .customer, rate: 1, rateResetMilliseconds: 1000, day: nil, month: nil, concurrency: nil),
        ])
        for mode in QuotaFailMode.allCases {
            var gate = QuotaGate()
            let plan = try self.plan()
            XCTAssertEqual(
                try self.answer(&gate, store: .reachable, mode: mode, storeDecision: admitted),
                .admitted(plan, rateLimitHeaders: RateLimitHeaders.fields(for: admitted, plan: plan)), "\(mode)"
            )
            XCTAssertEqual(
                try self.answer(&gate, store: .reachable, mode: mode, storeDecision: self.storeRefusal),
                .refuse(QuotaRefusal(source: .store, decision: self.storeRefusal, headers: RateLimitHeaders.fields(for: self.storeRefusal, plan: plan))),
                "\(mode)"
            )
            // What the store refused is refused here next, until it could pass.
            guard case .refuse(let next) = try self.answer(&gate, store: .reachable, mode: mode, now: self.start + 500_000) else {
                return XCTFail("\(mode): the refusal was not remembered")
            }
            XCTAssertEqual(next.source, .memory)
        }
    }

    // MARK: - Store away: the fail modes

    func testFailOpenAdmitsWithAWarningWhetherTheStoreWasKnownDownOrFailedAfterSending() throws {
        var gate = QuotaGate()
        XCTAssertEqual(
            try self.answer(&gate, store: .unreachable, mode: .open),
            .proceedUnchecked(QuotaWarning(message: "quota store unavailable; admitting", reason: "redis unavailable", failMode: .open))
        )
        XCTAssertEqual(
            try self.answer(&gate, store: .failsAfterSending, mode: .open),
            .proceedUnchecked(QuotaWarning(message: "quota store unavailable; admitting", reason: "connection closed", failMode: .open))
        )
        XCTAssertTrue(gate.pendingRefusals.isEmpty)
    }

    func testFailClosedRefusesWith503AndRetryAfterWhetherTheStoreWasKnownDownOrFailedAfterSending() throws {
        var gate = QuotaGate()
        XCTAssertEqual(
            try self.answer(&gate, store: .unreachable, mode: .closed),
            .refuseStoreAway(retryAfterSeconds: 1, warning: QuotaWarning(message: "quota store unavailable; refusing", reason: "redis unavailable", failMode: .closed))
        )
        XCTAssertEqual(
            try self.answer(&gate, store: .failsAfterSending, mode: .closed),
            .refuseStoreAway(retryAfterSeconds: 1, warning: QuotaWarning(message: "quota store unavailable; refusing", reason: "connection closed", failMode: .closed))
        )
    }

    func testFailLocalEnforcesTheRateInMemoryWhetherTheStoreWasKnownDownOrFailedAfterSending() throws {
        for store in [Store.unreachable, .failsAfterSending] {
            var gate = QuotaGate()
            XCTAssertEqual(try self.answer(&gate, store: store, mode: .local), .proceed, "\(store)")
            XCTAssertEqual(try self.answer(&gate, store: store, mode: .local), .proceed, "\(store): the burst of two")
            let refused = QuotaDecision.refused(
                level: self.contoso, kind: .rate, retryAfterMilliseconds: 1000, limit: 2, remaining: 0, resetAfterMicroseconds: 2_000_000
            )
            XCTAssertEqual(
                try self.answer(&gate, store: store, mode: .local),
                .refuse(QuotaRefusal(source: .localLimits, decision: refused, headers: RateLimitHeaders.fields(for: refused, plan: try self.plan()))),
                "\(store)"
            )
            XCTAssertEqual(try self.answer(&gate, store: store, mode: .local, now: self.start + 1_000_000), .proceed, "\(store): one back after a second")
            XCTAssertEqual(gate.overLimit.count, 0, "\(store): a local refusal is not the store's: not remembered")
        }
    }

    // MARK: - Unusable limits, reconfiguration

    func testLimitsThatMakeNoPlanProceedUncheckedWithAWarningInEveryMode() throws {
        for mode in QuotaFailMode.allCases {
            var gate = QuotaGate()
            var reads = 0
            // Two million a second: more than one per microsecond, which GCRA cannot count.
            let unusable = [LevelLimits(node: self.contoso, kind: .customer, limits: Limits(ratePerSecond: 2_000_000))]
            let answer = gate.admit(
                levels: unusable, oem: self.acme, customer: self.contoso, cost: 1, now: self.start,
                store: { reads += 1; return .reachable }(), failMode: mode
            ) { try QuotaPlan(levels: unusable, oem: self.acme, cost: 1, now: self.start) }
            XCTAssertEqual(
                answer, .proceedUnchecked(QuotaWarning(message: "unusable limits; admitting without quotas", reason: "\(RateLimitError.rateTooHigh)", failMode: nil)),
                "\(mode)"
            )
            XCTAssertEqual(reads, 0, "\(mode)")
        }
    }

    func testChangedLimitsForgetTheMemoryAndLocalLimitsButNotTheRefusalsToMeter() throws {
        var gate = try self.gateRememberingARefusal()
        _ = try self.answer(&gate, store: .reachable, mode: .open, now: self.start + 1)
        for _ in 0..<2 { _ = try self.answer(&gate, store: .unreachable, mode: .local) }
        guard case .refuse = try self.answer(&gate, store: .unreachable, mode: .local) else { return XCTFail("the local burst is not spent") }
        gate.limitsChanged()
        XCTAssertEqual(gate.overLimit.count, 0)
        XCTAssertEqual(try self.answer(&gate, store: .unreachable, mode: .local), .proceed, "the local burst starts afresh")
        XCTAssertFalse(gate.pendingRefusals.isEmpty)
    }
}
