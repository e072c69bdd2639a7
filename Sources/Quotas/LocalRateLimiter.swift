import Hierarchy

/// The `local` fail mode: GCRA per node of the tree, in this event loop's memory. Not shared
/// with other loops or nodes, so each enforces the full rate: an approximation that keeps a
/// flooding tenant in check while the shared store is away. Same arithmetic as the Redis
/// script, all levels or nothing.
public struct LocalRateLimiter: Sendable {
    private var tats: [NodeID: Int64] = [:]
    public let capacity: Int

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Admits `plan` (charging every rate-limited level) or returns the refusal.
    public mutating func admit(_ plan: QuotaPlan) -> QuotaDecision {
        var updates: [(NodeID, Int64)] = []
        for level in plan.levels {
            guard let rate = level.rate else { continue }
            switch GCRA(rate).decide(storedTAT: self.tats[level.node], now: plan.now, cost: plan.cost) {
            case .admitted(let newTAT, _, _):
                updates.append((level.node, newTAT))
            case .refused(let retryAfter, _):
                return .refused(level: level.node, kind: .rate, retryAfterMilliseconds: (retryAfter + 999) / 1000, limit: rate.burst)
            case .costExceedsBurst:
                return .refused(level: level.node, kind: .rate, retryAfterMilliseconds: nil, limit: rate.burst)
            }
        }
        if self.tats.count + updates.count > self.capacity {
            self.tats = self.tats.filter { $0.value > plan.now }
        }
        for (node, tat) in updates { self.tats[node] = tat }
        return .admitted([])
    }
}
