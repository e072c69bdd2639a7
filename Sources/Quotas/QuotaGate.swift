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
/// 2. A refusal the store is certain to give (`OverLimitCache`): refused here, before any plan
///    or round trip, and counted for usage metering (`pendingRefusals`), since the store never
///    sees it.
/// 3. Limits that make no plan (a rate the configuration should have refused): proceed
///    unchecked, with a warning.
/// 4. Store reachable: ask it. Its refusal is remembered for the next requests.
/// 5. Store unreachable — known before sending, or the command failing after it was sent —:
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
    public var pendingRefusals = PendingRefusals()

    public init(overLimit: OverLimitCache = OverLimitCache(), localLimits: LocalRateLimiter = LocalRateLimiter()) {
        self.overLimit = overLimit
        self.localLimits = localLimits
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
        if let remembered = self.overLimit.remembered(levels: levels, cost: cost, now: now) {
            self.pendingRefusals.add(oem: oem, customer: customer, now: now)
            return .refuse(QuotaRefusal(source: .memory, decision: remembered.decision, headers: remembered.fields))
        }
        let planned: QuotaPlan
        do {
            planned = try plan()
        } catch {
            return .proceedUnchecked(QuotaWarning(message: "unusable limits; admitting without quotas", reason: "\(error)", failMode: nil))
        }
        switch store() {
        case .reachable:
            return .askStore(planned)
        case .unreachable(let reason):
            return self.withoutStore(planned, reason: reason, failMode: failMode)
        }
    }

    /// The store's result for a plan `admit` answered `askStore` with. A failure (the
    /// connection lost, no reply in time, an error reply) leaves the request to the fail mode,
    /// as if the store had been known to be down.
    public mutating func storeAnswered(_ result: Result<QuotaDecision, any Error>, plan: QuotaPlan, failMode: QuotaFailMode) -> Answer {
        switch result {
        case .success(let decision):
            let headers = RateLimitHeaders.fields(for: decision, plan: plan)
            switch decision {
            case .admitted:
                return .admitted(plan, rateLimitHeaders: headers)
            case .refused:
                self.overLimit.record(decision, plan: plan)
                return .refuse(QuotaRefusal(source: .store, decision: decision, headers: headers))
            }
        case .failure(let error):
            return self.withoutStore(plan, reason: "\(error)", failMode: failMode)
        }
    }

    /// Limits may have changed (a new configuration): what was remembered or counted locally
    /// under the old ones no longer holds. Refusals not yet metered are kept.
    public mutating func limitsChanged() {
        self.overLimit = OverLimitCache(capacity: self.overLimit.capacity)
        self.localLimits = LocalRateLimiter(capacity: self.localLimits.capacity)
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
