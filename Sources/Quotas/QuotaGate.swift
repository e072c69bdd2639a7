import Hierarchy

/// The admission policy of one event loop, as a pure value: given a request's limits, the
/// store's state and the tier's fail mode, it answers what to do — ask the store, refuse from
/// memory, admit or refuse without the store — and keeps the loop's memory of refusals, its
/// local rate limits and its count of refusals decided here. No I/O and no clock: the driver
/// passes `now`, sends the plan to the store, hands the store's answer back
/// (`storeAnswered`) and applies every answer.
///
/// In order, for one request:
/// 1. No limits at any level: proceed; nothing is charged.
/// 2. A lease this loop holds for the customer (`QuotaLeases`) that covers the cost: admitted
///    here, without the store (its units were charged when granted). Leases run low ahead of
///    need into refills the driver sends off the request path (`leaseWork`, `leaseAnswered`).
/// 3. A refusal the store is certain to give (`OverLimitCache`): refused here, before any plan
///    or round trip, and counted for usage metering (`pendingRefusals`), since the store never
///    sees it.
/// 4. Limits that make no plan (a rate the configuration should have refused): proceed
///    unchecked, with a warning.
/// 5. Store reachable: ask it — for a grant sized to the customer's observed rate when it
///    can be leased (no concurrency limit on its path), else for this request alone. Its
///    refusal is remembered for the next requests.
/// 6. Store unreachable — known before sending, or the command failing after it was sent —:
///    the tier's fail mode (`QuotaFailMode`) decides.
public struct QuotaGate: Sendable {
    /// What the driver does with one request.
    public enum Answer: Sendable {
        /// Forward; nothing was charged in the store, nothing is released afterwards.
        case proceed
        /// Forward without the store's check (fail open, unusable limits); log the warning.
        case proceedUnchecked(QuotaWarning)
        /// Send `plan` to the store and give its result to `storeAnswered`.
        case askStore(QuotaPlan)
        /// The store admitted and charged `plan`: forward with these RateLimit headers, and
        /// release `plan` once the request ends.
        case admitted(QuotaPlan, rateLimitHeaders: [(name: String, value: String)])
        /// Answer 429 `quota-exceeded` with the refusal's headers.
        case refuse(QuotaRefusal)
        /// Fail closed: answer 503 `quota-store-unavailable` with `Retry-After`; log the warning.
        case refuseStoreAway(retryAfterSeconds: Int, warning: QuotaWarning)
    }

    /// Refusals the store gave on this loop, to refuse a flood without asking again.
    public private(set) var overLimit: OverLimitCache
    /// The `local` fail mode's rate limits on this loop.
    public private(set) var localLimits: LocalRateLimiter
    /// Refusals decided here without the store, for the driver to flush to the usage meter.
    public var pendingRefusals = PendingUsage(counting: .refused)
    /// Units granted ahead to this loop, by customer.
    public private(set) var leases: QuotaLeases

    public init(
        overLimit: OverLimitCache = OverLimitCache(), localLimits: LocalRateLimiter = LocalRateLimiter(), leases: QuotaLeaseSettings = .off
    ) {
        self.overLimit = overLimit
        self.localLimits = localLimits
        self.leases = QuotaLeases(settings: leases)
    }

    /// The first decision for a request.
    ///
    /// - Parameters:
    ///   - levels: `EffectivePolicy.limits`: customer first, then partner, OEM.
    ///   - customer: whose refusals are metered.
    ///   - now: µs since the epoch.
    ///   - store: read only when the store would be asked.
    ///   - plan: builds the plan for these limits, run only when a plan is needed (a request
    ///     refused from memory costs no plan).
    public mutating func admit(
        levels: [LevelLimits], oem: NodeID, customer: NodeID, cost: Int, now: Int64, store: @autoclosure () -> QuotaStoreState,
        failMode: QuotaFailMode, plan: () throws -> QuotaPlan
    ) -> Answer {
        guard !levels.isEmpty else { return .proceed }
        // Units held here were charged already: they are admitted whatever was refused since.
        let leased = self.leases.admit(levels: levels, customer: customer, cost: cost, now: now)
        if case .admitted(let plan, let remainingAtGrant, let held) = leased {
            return .admitted(plan, rateLimitHeaders: RateLimitHeaders.fields(admitted: remainingAtGrant, held: held, plan: plan))
        }
        if let remembered = self.overLimit.remembered(levels: levels, cost: cost, now: now) {
            self.pendingRefusals.add(oem: oem, customer: customer, now: now)
            return .refuse(QuotaRefusal(source: .memory, decision: remembered.decision, headers: remembered.fields))
        }
        var planned: QuotaPlan
        do {
            planned = try plan()
        } catch {
            return .proceedUnchecked(QuotaWarning(message: "unusable limits; admitting without quotas", reason: "\(error)", failMode: nil))
        }
        if case .ask(let want) = leased {
            let report = self.leases.beginAsk(customer, now: now)
            let request = QuotaLeaseRequest(
                customer: customer, want: want, need: cost, share: self.leases.settings.share, giveBack: report.expired, usage: report.usage,
                meterRefusal: planned.usageKey != nil, hold: self.leases.settings.hold, forRequest: true
            )
            planned = planned.leasing(request, cost: cost, now: now)
        }
        switch store() {
        case .reachable:
            return .askStore(planned)
        case .unreachable(let reason):
            if let request = planned.lease {
                self.leases.notGranted(request, notBefore: now, report: (request.usage, request.giveBack))
            }
            return self.withoutStore(planned, reason: reason, failMode: failMode)
        }
    }

    /// The store's result for a plan `admit` answered `askStore` with. A failure (the
    /// connection lost, no reply in time, an error reply) leaves the request to the fail mode,
    /// as if the store had been known to be down.
    public mutating func storeAnswered(_ result: Result<QuotaDecision, any Error>, plan: QuotaPlan, failMode: QuotaFailMode) -> Answer {
        switch result {
        case .success(.leased(let grant)):
            guard let request = plan.lease else { return self.withoutStore(plan, reason: "\(QuotaReplyError.malformed)", failMode: failMode) }
            let remaining = self.leases.granted(grant, plan: plan, request: request)
            return .admitted(plan, rateLimitHeaders: RateLimitHeaders.fields(for: .admitted(remaining), plan: plan))
        case .success(let decision):
            let headers = RateLimitHeaders.fields(for: decision, plan: plan)
            switch decision {
            case .admitted, .leased:
                return .admitted(plan, rateLimitHeaders: headers)
            case .refused:
                if let request = plan.lease { self.leases.notGranted(request, notBefore: plan.now, report: nil) }
                self.overLimit.record(decision, plan: plan, recheckAfter: self.calendarRecheck)
                return .refuse(QuotaRefusal(source: .store, decision: decision, headers: headers))
            }
        case .failure(let error):
            if let request = plan.lease {
                self.leases.notGranted(request, notBefore: plan.now, report: (request.usage, request.giveBack))
            }
            return self.withoutStore(plan, reason: "\(error)", failMode: failMode)
        }
    }

    /// Lease traffic to send now, off the request path: refills of leases running low and
    /// give-backs of leases retired or idle. Send each with `QuotaAdmission.send`, and hand
    /// every refill's result to `leaseAnswered`. Call when `nextLeaseWork` says, a few
    /// milliseconds later to send refills in batches.
    public mutating func leaseWork(now: Int64) -> [QuotaPlan] {
        self.leases.work(now: now)
    }

    /// When `leaseWork` next has something to hand out (wall-clock µs; 0: now), nil when
    /// nothing is queued and no lease is held. Look again after every admission, answer and
    /// `leaseWork`: only they queue work.
    public func nextLeaseWork() -> Int64? {
        self.leases.nextWork()
    }

    /// The store's answer to a refill `leaseWork` handed out. A refill takes only what a level
    /// can spare (a `share`-th of what it has left, no minimum), so near the end of a budget it
    /// is granted nothing and the loop's requests ask for themselves, one at a time, as without
    /// leases; refills then wait a refresh interval. A refusal (limits changed under it) is
    /// remembered like a request's and holds refills back until it clears; a failure holds them
    /// back one refresh interval and keeps what the refill carried for the next ask.
    public mutating func leaseAnswered(_ result: Result<QuotaDecision, any Error>, plan: QuotaPlan, now: Int64) {
        guard let request = plan.lease, request.want > 0 else { return }
        switch result {
        case .success(.leased(let grant)) where grant.units > 0:
            self.leases.refilled(grant, plan: plan, request: request, now: now)
        case .success(let decision):
            var notBefore = now + self.leases.settings.refreshInterval
            if case .refused(_, _, let retryAfter, _, _, _) = decision {
                self.overLimit.record(decision, plan: plan, recheckAfter: self.calendarRecheck)
                notBefore = retryAfter.map { now + $0 * 1_000 } ?? plan.now + plan.period.untilDayEnd
            }
            self.leases.notGranted(request, notBefore: notBefore, report: nil)
        case .failure:
            self.leases.notGranted(request, notBefore: now + self.leases.settings.refreshInterval, report: (request.usage, request.giveBack))
        }
    }

    /// How long a day or month refusal is remembered: with leases, until idle leases have been
    /// given back (they may free units); without, until the period ends.
    private var calendarRecheck: Int64? {
        self.leases.settings.isEnabled ? self.leases.settings.idleAfter : nil
    }

    /// Every lease given back (a graceful shutdown): the plans to send with
    /// `QuotaAdmission.send`. Requests admitted afterwards ask the store.
    public mutating func returnLeases(now: Int64) -> [QuotaPlan] {
        self.leases.returnAll(now: now)
    }

    /// Limits may have changed (a new configuration): what was remembered or counted locally
    /// under the old ones no longer holds. Refusals not yet metered are kept.
    /// Leases are given back (at the next `leaseWork`) and made anew under the new limits and
    /// `leases` settings.
    public mutating func limitsChanged(leases: QuotaLeaseSettings? = nil) {
        self.overLimit = OverLimitCache(capacity: self.overLimit.capacity)
        self.localLimits = LocalRateLimiter(capacity: self.localLimits.capacity)
        self.leases.reconfigure(leases ?? self.leases.settings)
    }

    private mutating func withoutStore(_ plan: QuotaPlan, reason: String, failMode: QuotaFailMode) -> Answer {
        switch failMode {
        case .open:
            return .proceedUnchecked(QuotaWarning(message: "quota store unavailable; admitting", reason: reason, failMode: failMode))
        case .closed:
            return .refuseStoreAway(
                retryAfterSeconds: 1, warning: QuotaWarning(message: "quota store unavailable; refusing", reason: reason, failMode: failMode)
            )
        case .local:
            let decision = self.localLimits.admit(plan)
            guard case .refused = decision else { return .proceed }
            return .refuse(QuotaRefusal(source: .localLimits, decision: decision, headers: RateLimitHeaders.fields(for: decision, plan: plan)))
        }
    }
}

/// A 429 decided by the store or, without it, by this loop.
public struct QuotaRefusal: Sendable {
    /// Who decided.
    public enum Source: Sendable, Hashable {
        /// The over-limit memory: the store would certainly refuse.
        case memory
        /// The store itself.
        case store
        /// The `local` fail mode's rate limits, while the store is away.
        case localLimits
    }

    public let source: Source
    /// Always `.refused`.
    public let decision: QuotaDecision
    /// RateLimit headers and `Retry-After` (`RateLimitHeaders`).
    public let headers: [(name: String, value: String)]

    /// For the log line: which limit refused, or that memory did.
    public var reason: String {
        guard self.source != .memory, case .refused(let level, let kind, _, _, _, _) = self.decision else { return "over limit (remembered)" }
        return "\(kind) limit of \(level)"
    }
}

/// A warning the driver logs (coalesced: it would otherwise repeat with every request).
public struct QuotaWarning: Sendable, Hashable {
    public let message: String
    /// What went wrong: the store's error or the unusable limit.
    public let reason: String
    /// The fail mode that decided; nil when no fail mode was involved.
    public let failMode: QuotaFailMode?
}

extension QuotaGate.Answer: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.proceed, .proceed): true
        case (.proceedUnchecked(let a), .proceedUnchecked(let b)): a == b
        case (.askStore(let a), .askStore(let b)): a == b
        case (.admitted(let a, let aHeaders), .admitted(let b, let bHeaders)): a == b && aHeaders.elementsEqual(bHeaders, by: ==)
        case (.refuse(let a), .refuse(let b)): a == b
        case (.refuseStoreAway(let a, let aWarning), .refuseStoreAway(let b, let bWarning)): a == b && aWarning == bWarning
        default: false
        }
    }
}

extension QuotaRefusal: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.source == rhs.source && lhs.decision == rhs.decision && lhs.headers.elementsEqual(rhs.headers, by: ==)
    }
}
