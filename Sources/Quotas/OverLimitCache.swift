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
        self.entries[node] = Entry(until: until, kind: kind, limit: limit)
    }

    /// The refusal for `plan` if any of its levels is remembered as over a limit at `plan.now`.
    public func refusal(for plan: QuotaPlan) -> QuotaDecision? {
        var longest: (NodeID, Entry)?
        for level in plan.levels {
            guard let entry = self.entries[level.node], entry.until > plan.now else { continue }
            if longest == nil || entry.until > longest!.1.until { longest = (level.node, entry) }
        }
        guard let (node, entry) = longest else { return nil }
        // Rounded up, so a client retrying exactly then finds the limit clear.
        let milliseconds = (entry.until - plan.now + 999) / 1000
        return .refused(level: node, kind: entry.kind, retryAfterMilliseconds: milliseconds, limit: entry.limit)
    }
}
