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
            let gcra = GCRA(rate)
            let stored = self.tats[level.node]
            let retryAfter: Int64?
            switch gcra.decide(storedTAT: stored, now: plan.now, cost: plan.cost) {
            case .admitted(let newTAT, _, _):
                updates.append((level.node, newTAT))
                continue
            case .refused(let microseconds, _):
                retryAfter = (microseconds + 999) / 1000
            case .costExceedsBurst:
                retryAfter = nil
            }
            let ahead = gcra.bookedAhead(storedTAT: stored, now: plan.now)
            return .refused(
                level: level.node, kind: .rate, retryAfterMilliseconds: retryAfter, limit: rate.burst,
                remaining: gcra.remaining(bookedAhead: ahead), resetAfterMicroseconds: ahead
            )
        }
        if self.tats.count + updates.count > self.capacity {
            self.tats = self.tats.filter { $0.value > plan.now }
        }
        for (node, tat) in updates { self.tats[node] = tat }
        return .admitted([])
    }
}
