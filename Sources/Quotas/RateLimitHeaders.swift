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
            return self.fields(admitted: remaining, held: 0, plan: plan)
        }
    }

    /// The fields of an admission, from what each level had left (`remaining`) plus `held`
    /// units at every rate, day and month level (a lease's: `QuotaLease.remaining(at:)`).
    /// Every admitted request answers these fields, most of them from a lease: the tightest
    /// limit is found without building a list of candidates or a policy name per level, and its
    /// name is a literal (this function made about 10 allocations per request before, `SITES=1
    /// bench/allocations.sh`); a lease's remaining counts are added here rather than in a list
    /// made per request (one allocation per admitted request).
    public static func fields(admitted remaining: [LevelRemaining], held: Int, plan: QuotaPlan) -> [(name: String, value: String)] {
        var tightest: Tightest?
        for (level, left) in zip(plan.levels, remaining) {
            if let rate = level.rate, let r = left.rate {
                Self.consider(&tightest, level, .rate, quota: rate.burst, remaining: r + held, reset: ((left.rateResetMilliseconds ?? 0) + 999) / 1000, period: plan.period)
            }
            if let quota = level.perDay, let r = left.day {
                Self.consider(&tightest, level, .day, quota: quota, remaining: r + held, reset: seconds(plan.period.untilDayEnd), period: plan.period)
            }
            if let quota = level.perMonth, let r = left.month {
                Self.consider(&tightest, level, .month, quota: quota, remaining: r + held, reset: seconds(plan.period.untilMonthEnd), period: plan.period)
            }
        }
        guard let tightest else { return [] }
        let name = policyName(tightest.level, tightest.kind)
        return [
            ("RateLimit-Policy", "\(name);q=\(tightest.quota);w=\(tightest.window)"),
            ("RateLimit", "\(name);r=\(tightest.remaining);t=\(tightest.reset)"),
        ]
    }

    private struct Tightest {
        var level: NodeKind
        var kind: QuotaKind
        var quota: Int
        var window: Int64
        var remaining: Int
        var reset: Int64
    }

    /// Keeps the candidate when it has fewer units left than the tightest so far (on a tie, the
    /// one found first: customer before partner before OEM; rate, day, month).
    private static func consider(
        _ tightest: inout Tightest?, _ level: QuotaPlan.Level, _ kind: QuotaKind, quota: Int, remaining: Int, reset: Int64, period: UTCCalendarPeriod
    ) {
        if let current = tightest, remaining >= current.remaining { return }
        tightest = Tightest(level: level.kind, kind: kind, quota: quota, window: windowSeconds(kind, level: level, period: period) ?? 0, remaining: remaining, reset: reset)
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

    /// The quoted policy name, `"<level>-<quota>"`: literals, so naming one allocates nothing.
    static func policyName(_ level: NodeKind, _ kind: QuotaKind) -> String {
        switch (level, kind) {
        case (.customer, .rate): #""customer-rate""#
        case (.customer, .day): #""customer-day""#
        case (.customer, .month): #""customer-month""#
        case (.customer, .concurrency): #""customer-concurrency""#
        case (.partner, .rate): #""partner-rate""#
        case (.partner, .day): #""partner-day""#
        case (.partner, .month): #""partner-month""#
        case (.partner, .concurrency): #""partner-concurrency""#
        case (.oem, .rate): #""oem-rate""#
        case (.oem, .day): #""oem-day""#
        case (.oem, .month): #""oem-month""#
        case (.oem, .concurrency): #""oem-concurrency""#
        }
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
