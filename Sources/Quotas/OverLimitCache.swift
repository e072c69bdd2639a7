import Hierarchy

/// Refusals remembered on one event loop, so that a tenant flooding past a limit is refused
/// here, without a Redis round trip: its flood costs Redis nothing and slows nobody else.
///
/// It never refuses a request Redis would admit. What Redis reported with a refusal is kept
/// per node and per limit kind, and a later request of any cost is judged against it:
/// - `day` / `month`: the units left and the end of the UTC period. Without leases, until the
///   period ends the units left can only go down (admissions anywhere charge them, nothing
///   gives them back), so a request costing more than the remembered units is certain to be
///   refused. One that costs no more goes to Redis, which may admit it. Leases give unused
///   units back, so with leases such a refusal is trusted only a short while (`record`'s
///   `recheckAfter`), then Redis is asked again.
/// - `rate`: the theoretical arrival time (TAT) the refused check used. Admissions anywhere
///   only move it later, so a request that GCRA refuses against the remembered TAT is certain
///   to be refused by Redis. A cheaper request fits sooner than an expensive one, and is let
///   through to Redis from the microsecond it could fit.
///
/// A remembered refusal carries the headers Redis would send at that moment: the same policy,
/// `r` = the remembered units left (for a rate, those left at `now`), and the retry time of
/// this request's cost (for a day or month quota, the end of the period).
///
/// Every event loop has its own memory, and each refuses only what Redis would refuse, so no
/// loop's answer disagrees with Redis, whatever that loop has seen. Not remembered, as Redis
/// alone can tell: concurrency refusals (a slot may free at any moment), refusals that can
/// never clear (a cost above the burst or the calendar limit), and a node whose limits changed
/// since the refusal. A request costing more than a remembered burst or calendar limit is
/// likewise left to Redis.
public struct OverLimitCache: Sendable {
    /// What one refusal of one limit of one node tells about later requests.
    private struct Refusal: Sendable {
        let kind: QuotaKind
        /// The node's limits when it was refused; under other limits it tells nothing.
        let limits: Limits
        /// `rate`: the rate and burst; nil for `day` and `month`.
        let rate: RateLimit?
        /// The burst for `rate`, the quota for `day` and `month`.
        let limit: Int
        /// µs since the epoch. `rate`: the TAT, when the limit is idle again; `day` / `month`:
        /// when the period ends.
        let resetAt: Int64
        /// `day` / `month`: the units left at the refusal, at most that many until `resetAt`.
        let remaining: Int
        /// `day` / `month`: trusted until this instant (µs), then Redis is asked again — units
        /// leased to other nodes may come back before the period ends.
        var trustedUntil: Int64
        /// `RateLimit-Policy` and the policy's name, fixed at the refusal.
        let policy: (name: String, value: String)

        /// The refusal Redis is certain to give a request of `cost` at `now` under `limits`,
        /// as retry-after ms, units left and µs until the limit resets; nil when it might
        /// admit it.
        func judge(cost: Int, now: Int64, limits: Limits) -> (retryAfter: Int64, remaining: Int, resetAfter: Int64)? {
            guard limits == self.limits, cost <= self.limit else { return nil }
            if let rate = self.rate {
                let gcra = GCRA(rate)
                guard case .refused(let retryAfter, let ahead) = gcra.decide(storedTAT: self.resetAt, now: now, cost: cost) else { return nil }
                return ((retryAfter + 999) / 1000, gcra.remaining(bookedAhead: ahead), ahead)
            }
            guard now < self.resetAt, now < self.trustedUntil, cost > self.remaining else { return nil }
            return ((self.resetAt - now + 999) / 1000, self.remaining, self.resetAt - now)
        }

        /// Of two refusals of one limit, the one that refuses more: a later TAT or period, or
        /// fewer units left in the same period. One made under other limits is replaced.
        func merged(with newer: Refusal) -> Refusal {
            guard self.limits == newer.limits else { return newer }
            if self.resetAt != newer.resetAt { return self.resetAt > newer.resetAt ? self : newer }
            var kept = self.remaining <= newer.remaining ? self : newer
            kept.trustedUntil = max(self.trustedUntil, newer.trustedUntil)
            return kept
        }
    }

    /// The refusals remembered for one node, one per limit kind that can be remembered.
    private struct NodeRefusals: Sendable {
        var rate: Refusal?
        var day: Refusal?
        var month: Refusal?

        var all: [Refusal] { [self.rate, self.day, self.month].compactMap { $0 } }

        /// After this instant (µs) none of them refuses anything.
        var expiry: Int64 { self.all.map(\.resetAt).max() ?? 0 }

        mutating func add(_ refusal: Refusal) {
            switch refusal.kind {
            case .rate: self.rate = self.rate?.merged(with: refusal) ?? refusal
            case .day: self.day = self.day?.merged(with: refusal) ?? refusal
            case .month: self.month = self.month?.merged(with: refusal) ?? refusal
            case .concurrency: break
            }
        }
    }

    private var entries: [NodeID: NodeRefusals] = [:]
    /// Bound on remembered nodes; beyond it, expired entries are dropped first, then all.
    public let capacity: Int

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Nodes with a refusal remembered.
    public var count: Int { self.entries.count }

    /// Remembers what a refusal Redis returned for `plan` tells about later requests.
    ///
    /// - Parameter recheckAfter: µs a day or month refusal is trusted before Redis is asked
    ///   again; nil: until the period ends. With leases, units come back to a calendar limit
    ///   (an idle lease, a node's shutdown), so what Redis had left can go up again.
    public mutating func record(_ decision: QuotaDecision, plan: QuotaPlan, recheckAfter: Int64? = nil) {
        guard case .refused(let node, let kind, let retryAfter?, let limit, let remaining, let resetAfter?) = decision,
              kind != .concurrency, retryAfter > 0,
              let level = plan.levels.first(where: { $0.node == node }),
              kind != .rate || level.rate != nil
        else { return }
        let refusal = Refusal(
            kind: kind, limits: level.limits, rate: kind == .rate ? level.rate : nil, limit: limit,
            resetAt: plan.now + resetAfter, remaining: remaining,
            trustedUntil: recheckAfter.map { plan.now + $0 } ?? plan.now + resetAfter,
            policy: RateLimitHeaders.policy(kind, level: level, limit: limit, period: plan.period)
        )
        if self.entries[node] == nil, self.entries.count >= self.capacity {
            self.entries = self.entries.filter { $0.value.expiry > plan.now }
            if self.entries.count >= self.capacity { self.entries.removeAll(keepingCapacity: true) }
        }
        self.entries[node, default: NodeRefusals()].add(refusal)
    }

    /// The refusal Redis is certain to give a request of `cost` charged at `levels` (the
    /// tenant's `EffectivePolicy.limits`) at `now`, with its response headers; nil when Redis
    /// must decide. Checked before any plan is built, so a flood costs a few dictionary
    /// lookups. When several remembered limits refuse, the longest wait is reported, as the
    /// admission script does.
    public func remembered(levels: [LevelLimits], cost: Int, now: Int64) -> (decision: QuotaDecision, fields: [(name: String, value: String)])? {
        var longest: (node: NodeID, refusal: Refusal, judged: (retryAfter: Int64, remaining: Int, resetAfter: Int64))?
        for level in levels {
            guard let remembered = self.entries[level.node] else { continue }
            for refusal in remembered.all {
                guard let judged = refusal.judge(cost: cost, now: now, limits: level.limits) else { continue }
                if longest == nil || judged.retryAfter > longest!.judged.retryAfter { longest = (level.node, refusal, judged) }
            }
        }
        guard let (node, refusal, judged) = longest else { return nil }
        return (
            .refused(
                level: node, kind: refusal.kind, retryAfterMilliseconds: judged.retryAfter, limit: refusal.limit,
                remaining: judged.remaining, resetAfterMicroseconds: judged.resetAfter
            ),
            RateLimitHeaders.refusal(policy: refusal.policy, kind: refusal.kind, retryAfterMilliseconds: judged.retryAfter, remaining: judged.remaining)
        )
    }
}
