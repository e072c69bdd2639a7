import Hierarchy

/// Refusals remembered on one event loop: once a node of the tree is refused until T, further
/// requests that would be charged at that node are refused here until T, without a Redis round
/// trip. A tenant flooding far past its limit then costs Redis nothing and slows nobody else.
///
/// Conservative by design: the remembered moment was computed for the refused request's cost,
/// so a cheaper request may be refused slightly longer than Redis would have — never admitted
/// earlier. Concurrency refusals (a slot may free at any moment) and refusals that can never
/// clear (cost above the burst) are not remembered.
public struct OverLimitCache: Sendable {
    private struct Entry: Sendable {
        var until: Int64
        var kind: QuotaKind
        var limit: Int
        /// `RateLimit-Policy` and the policy name, fixed at the refusal: a remembered answer is
        /// written without rebuilding a plan.
        var policy: String
        var name: String
    }

    /// Unix microseconds until which each node is known to be over a limit.
    private var entries: [NodeID: Entry] = [:]
    /// Bound on remembered nodes; beyond it, expired entries are dropped first, then all.
    public let capacity: Int

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    public var count: Int { self.entries.count }

    /// Remembers a refusal Redis returned for `plan`.
    public mutating func record(_ decision: QuotaDecision, plan: QuotaPlan) {
        guard case .refused(let node, let kind, let retryAfter?, let limit) = decision, kind != .concurrency, retryAfter > 0 else { return }
        let until = plan.now + retryAfter * 1000
        if self.entries.count >= self.capacity {
            self.entries = self.entries.filter { $0.value.until > plan.now }
            if self.entries.count >= self.capacity { self.entries.removeAll(keepingCapacity: true) }
        }
        if let existing = self.entries[node], existing.until >= until { return }
        let policy = RateLimitHeaders.fields(for: decision, plan: plan).first { $0.name == "RateLimit-Policy" }?.value ?? ""
        let name = String(policy.prefix { $0 != ";" })
        self.entries[node] = Entry(until: until, kind: kind, limit: limit, policy: policy, name: name)
    }

    /// The refusal for `plan` if any of its levels is remembered as over a limit at `plan.now`.
    public func refusal(for plan: QuotaPlan) -> QuotaDecision? {
        self.remembered(nodes: plan.levels.lazy.map(\.node), now: plan.now)?.decision
    }

    /// The remembered refusal for a request charged at `nodes`, with its response headers:
    /// checked before any plan is built, so a flood costs a few dictionary lookups.
    public func remembered(nodes: some Sequence<NodeID>, now: Int64) -> (decision: QuotaDecision, fields: [(name: String, value: String)])? {
        var longest: (NodeID, Entry)?
        for node in nodes {
            guard let entry = self.entries[node], entry.until > now else { continue }
            if longest == nil || entry.until > longest!.1.until { longest = (node, entry) }
        }
        guard let (node, entry) = longest else { return nil }
        // Rounded up, so a client retrying exactly then finds the limit clear.
        let milliseconds = (entry.until - now + 999) / 1000
        let seconds = max(1, (milliseconds + 999) / 1000)
        return (
            .refused(level: node, kind: entry.kind, retryAfterMilliseconds: milliseconds, limit: entry.limit),
            [("RateLimit-Policy", entry.policy), ("RateLimit", "\(entry.name);r=0;t=\(seconds)"), ("Retry-After", String(seconds))]
        )
    }
}
