import Hierarchy

/// The response header fields telling a client about its quota (IETF httpapi draft
/// "RateLimit header fields for HTTP": `RateLimit-Policy` and `RateLimit`, Structured Field
/// lists), plus `Retry-After` on refusals.
///
/// One policy is named, `"<level>-<quota>"`, where level is the node kind (`customer`,
/// `partner`, `oem`) and quota a `QuotaKind` (`rate`, `day`, `month`, `concurrency`) — e.g.
/// `"partner-day"`. Node ids are deliberately not sent: a customer need not learn its
/// partner's or OEM's tenant id; the access log names the node.
///
///     RateLimit-Policy: "partner-day";q=10000;w=86400
///     RateLimit: "partner-day";r=3;t=3600
///     Retry-After: 3600
///
/// - Refused: the policy that refused; `r` = what it has left, fewer than the request's cost
///   (`QuotaDecision.refused`'s `remaining`: `r=3` above refused a request of cost 5; it is 0
///   once the limit is used up); `t` = `Retry-After` = the retry-after in whole seconds,
///   rounded up, at least 1. A concurrency refusal has no window (`w` omitted) and no known
///   retry time: `Retry-After: 1`, `t` omitted. A request that can never pass under these
///   limits (cost above the burst or the calendar limit) gets neither `t` nor `Retry-After`.
/// - Admitted: the tightest policy — the fewest units remaining among the rate, day and month
///   limits of all levels; on a tie the first in plan order (customer before partner before
///   OEM; rate, day, month). `t` = seconds until it resets (rate: fully idle; day/month: the
///   UTC period ends), rounded up. No fields when no level limits rate, day or month.
/// - Parameters: `q` is the burst for `rate` (with `w` its refill time, burst × T, rounded
///   up to whole seconds), the limit for `day` (`w=86400`) and `month` (`w` = this month's
///   length), the limit for `concurrency`.
public enum RateLimitHeaders {
    public static func fields(for decision: QuotaDecision, plan: QuotaPlan) -> [(name: String, value: String)] {
        switch decision {
        case .refused(let node, let kind, let retryAfter, let limit, let remaining, _):
            guard let level = plan.levels.first(where: { $0.node == node }) else { return [] }
            let policy = self.policy(kind, level: level, limit: limit, period: plan.period)
            return self.refusal(policy: policy, kind: kind, retryAfterMilliseconds: retryAfter, remaining: remaining)

        case .leased(let grant):
            return self.fields(for: .admitted(grant.remaining), plan: plan)

        case .admitted(let remaining):
            var tightest: (name: String, quota: Int, window: Int64, remaining: Int, reset: Int64)?
            for (level, left) in zip(plan.levels, remaining) {
                var candidates: [(QuotaKind, Int, Int, Int64)] = []
                if let rate = level.rate, let r = left.rate {
                    candidates.append((.rate, rate.burst, r, ((left.rateResetMilliseconds ?? 0) + 999) / 1000))
                }
                if let quota = level.perDay, let r = left.day {
                    candidates.append((.day, quota, r, seconds(plan.period.untilDayEnd)))
                }
                if let quota = level.perMonth, let r = left.month {
                    candidates.append((.month, quota, r, seconds(plan.period.untilMonthEnd)))
                }
                for (kind, quota, r, reset) in candidates where tightest == nil || r < tightest!.remaining {
                    tightest = (policyName(level.kind, kind), quota, windowSeconds(kind, level: level, period: plan.period) ?? 0, r, reset)
                }
            }
            guard let tightest else { return [] }
            return [
                ("RateLimit-Policy", "\(tightest.name);q=\(tightest.quota);w=\(tightest.window)"),
                ("RateLimit", "\(tightest.name);r=\(tightest.remaining);t=\(tightest.reset)"),
            ]
        }
    }

    /// The policy of a refusal by `kind` at `level`: its name and its `RateLimit-Policy` value.
    static func policy(_ kind: QuotaKind, level: QuotaPlan.Level, limit: Int, period: UTCCalendarPeriod) -> (name: String, value: String) {
        let name = policyName(level.kind, kind)
        var value = "\(name);q=\(limit)"
        if let window = windowSeconds(kind, level: level, period: period) { value += ";w=\(window)" }
        return (name, value)
    }

    /// The fields of a refusal by `policy`, whether Redis decided it or the over-limit memory.
    static func refusal(
        policy: (name: String, value: String), kind: QuotaKind, retryAfterMilliseconds: Int64?, remaining: Int
    ) -> [(name: String, value: String)] {
        var state = "\(policy.name);r=\(remaining)"
        var fields = [(name: "RateLimit-Policy", value: policy.value)]
        switch (kind, retryAfterMilliseconds) {
        case (.concurrency, .some):
            fields += [("RateLimit", state), ("Retry-After", "1")]
        case (_, let milliseconds?):
            let seconds = max(1, (milliseconds + 999) / 1000)
            state += ";t=\(seconds)"
            fields += [("RateLimit", state), ("Retry-After", String(seconds))]
        case (_, nil):
            fields += [("RateLimit", state)]
        }
        return fields
    }

    static func policyName(_ level: NodeKind, _ kind: QuotaKind) -> String {
        "\"\(level.rawValue)-\(kind.rawValue)\""
    }

    private static func seconds(_ microseconds: Int64) -> Int64 { (microseconds + 999_999) / 1_000_000 }

    private static func windowSeconds(_ kind: QuotaKind, level: QuotaPlan.Level, period: UTCCalendarPeriod) -> Int64? {
        switch kind {
        case .rate: return level.rate.map { seconds($0.window) }
        case .day: return 86_400
        case .month: return Int64(period.daysInMonth) * 86_400
        case .concurrency: return nil
        }
    }
}
