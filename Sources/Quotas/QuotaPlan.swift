import Hierarchy

/// Everything the admission script needs for one request, computed without I/O: the keys and
/// ARGV of `QuotaScript.admit` (see there for the layout), and what is needed afterwards to
/// read the reply and release the request.
public struct QuotaPlan: Sendable, Hashable {
    /// One level as the script sees it.
    public struct Level: Sendable, Hashable {
        public let node: NodeID
        public let kind: NodeKind
        /// As configured; the fields below are derived from it.
        public let limits: Limits
        public let keys: QuotaKeys
        /// nil when the level has no rate limit.
        public let rate: RateLimit?
        public let perDay: Int?
        public let perMonth: Int?
        public let concurrency: Int?
    }

    /// How long the calendar keys outlive their period, so a node whose clock is a little
    /// behind still finds yesterday's count instead of a fresh key. Seconds.
    public static let calendarMargin: Int64 = 3_600
    /// The in-flight counters' safety TTL, renewed by every admission, seconds. A gateway that
    /// dies with requests in flight leaks those counts until the counter goes idle this long.
    public static let defaultInflightTTL: Int64 = 600

    public let levels: [Level]
    public let cost: Int
    /// µs since the epoch.
    public let now: Int64
    public let period: UTCCalendarPeriod
    public let keys: [String]
    public let arguments: [String]
    /// The customer's usage hash for the day, charged by the admission script itself; nil
    /// when the plan does not meter.
    public let usageKey: String?

    /// - Parameters:
    ///   - levels: `EffectivePolicy.limits`: customer first, then partner, OEM.
    ///   - oem: `EffectivePolicy.path.oem`, the hash tag of every key.
    ///   - cost: the route's cost, at least 1; charged to rate, day and month. Concurrency
    ///     counts requests.
    ///   - now: µs since the epoch, in `0...GCRA.maxInstant`.
    ///   - usage: the customer to meter and how many days its usage is kept; nil: no metering.
    /// - Throws: `RateLimitError` when a level's rate and burst are not a usable `RateLimit`
    ///   (configuration validation should have refused them).
    public init(
        levels: [LevelLimits], oem: NodeID, cost: Int, now: Int64,
        prefix: String = "erp", inflightTTL: Int64 = QuotaPlan.defaultInflightTTL, usage: (customer: NodeID, retentionDays: Int)? = nil
    ) throws(RateLimitError) {
        precondition(cost >= 1, "a request costs at least 1")
        precondition(now >= 0 && now <= GCRA.maxInstant, "now is outside 0...GCRA.maxInstant")
        let period = UTCCalendarPeriod(now: now)
        var planned: [Level] = []
        for level in levels {
            var rate: RateLimit?
            if let perSecond = level.limits.ratePerSecond {
                rate = try RateLimit(requests: perSecond, periodMicroseconds: 1_000_000, burst: level.limits.burst ?? perSecond)
            }
            planned.append(Level(
                node: level.node, kind: level.kind, limits: level.limits,
                keys: QuotaKeys(prefix: prefix, oem: oem, node: level.node, period: period),
                rate: rate, perDay: level.limits.perDay, perMonth: level.limits.perMonth,
                concurrency: level.limits.concurrency
            ))
        }
        self.levels = planned
        self.cost = cost
        self.now = now
        self.period = period
        let usageKey = usage.map { UsageMeter.key(prefix: prefix, oem: oem, customer: $0.customer, day: period.dayStamp) }
        self.usageKey = usageKey
        self.keys = planned.flatMap(\.keys.all) + (usageKey.map { [$0] } ?? [])

        let secondsCeiling = { (microseconds: Int64) in (microseconds + 999_999) / 1_000_000 }
        var arguments = [
            String(now), String(cost), String(planned.count),
            String(period.untilDayEnd), String(period.untilMonthEnd),
            String(secondsCeiling(period.untilDayEnd) + Self.calendarMargin),
            String(secondsCeiling(period.untilMonthEnd) + Self.calendarMargin),
            String(inflightTTL),
        ]
        for level in planned {
            arguments += [
                String(level.rate?.emissionInterval ?? 0), String(level.rate?.burst ?? 0),
                String(level.perDay ?? -1), String(level.perMonth ?? -1), String(level.concurrency ?? -1),
            ]
        }
        if let usage { arguments.append(String(usage.retentionDays * 86_400)) }
        self.arguments = arguments
    }

    /// True when no level limits anything: no Redis round trip is needed.
    public var isUnlimited: Bool { self.levels.isEmpty }

    /// The keys `QuotaScript.release` decrements when an admitted request ends.
    public var inflightKeys: [String] {
        self.levels.filter { $0.concurrency != nil }.map(\.keys.inflight)
    }
}
