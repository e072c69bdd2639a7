import Hierarchy
import RedisClient

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
    public private(set) var cost: Int
    /// µs since the epoch.
    public private(set) var now: Int64
    public private(set) var period: UTCCalendarPeriod
    /// The customer's usage hash for the day, charged by the admission script itself; nil
    /// when the plan does not meter.
    public let usageKey: String?
    /// Set when the plan asks for (or gives back) a lease through `QuotaScript.lease` rather
    /// than admitting one request through `QuotaScript.admit`.
    public private(set) var lease: QuotaLeaseRequest?
    /// The limits the plan was made from, and the OEM: what `leasing` makes another plan from.
    public let levelLimits: [LevelLimits]
    public let oem: NodeID
    private let prefix: String
    private let inflightTTL: Int64
    private let usageCustomer: NodeID?
    private let usageRetentionDays: Int?

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
        prefix: String = "erp", inflightTTL: Int64 = QuotaPlan.defaultInflightTTL, usage: (customer: NodeID, retentionDays: Int)? = nil,
        lease: QuotaLeaseRequest? = nil
    ) throws(RateLimitError) {
        precondition(cost >= 1, "a request costs at least 1")
        precondition(lease.map { $0.rateGiveBack.isEmpty || $0.rateGiveBack.count == levels.count } ?? true, "one rate give-back per level")
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
        self.lease = lease
        self.levelLimits = levels
        self.oem = oem
        self.prefix = prefix
        self.inflightTTL = inflightTTL
        self.usageCustomer = usage?.customer
        self.usageRetentionDays = usage?.retentionDays
    }

    /// KEYS of the plan's script (layout in `QuotaScript`), as strings.
    public var keys: [String] {
        var list = RedisArgumentList()
        self.writeKeys(into: &list)
        return list.arguments
    }

    /// ARGV of the plan's script (layout in `QuotaScript`), as strings.
    public var arguments: [String] {
        var list = RedisArgumentList()
        self.writeArguments(into: &list)
        return list.arguments
    }

    /// The plan's script call, its KEYS and ARGV written straight into the command sent: a
    /// round trip to the store is every request's path for customers whose leases hold one
    /// unit, and the arrays of strings it went through were a third of its allocations.
    public func scriptCall(sha: String) -> RedisScriptCall {
        // Counted from the same description that fills the call, so the layout is written down
        // once; the count costs no allocation, and the buffer is sized once, never regrown.
        var size = RedisArgumentSize()
        self.writeKeys(into: &size)
        let keyCount = size.count
        self.writeArguments(into: &size)
        var call = RedisScriptCall(sha: sha, keyCount: keyCount, argumentCount: size.count - keyCount, payload: size.bytes)
        self.writeKeys(into: &call)
        self.writeArguments(into: &call)
        return call
    }

    /// Any key of the plan: they share one Redis Cluster slot (the OEM's hash tag).
    public var slotKey: String? { self.levels.first?.keys.base }

    private func writeKeys(into writer: inout some RedisArgumentWriter) {
        for level in self.levels { level.keys.write(into: &writer) }
        if let usageKey = self.usageKey { writer.append(usageKey) }
    }

    private func writeArguments(into writer: inout some RedisArgumentWriter) {
        let secondsCeiling = { (microseconds: Int64) in (microseconds + 999_999) / 1_000_000 }
        writer.append(self.now)
        writer.append(Int64(self.lease?.need ?? self.cost))
        writer.append(Int64(self.levels.count))
        writer.append(self.period.untilDayEnd)
        writer.append(self.period.untilMonthEnd)
        writer.append(secondsCeiling(self.period.untilDayEnd) + Self.calendarMargin)
        writer.append(secondsCeiling(self.period.untilMonthEnd) + Self.calendarMargin)
        writer.append(self.inflightTTL)
        for level in self.levels {
            writer.append(level.rate?.emissionInterval ?? 0)
            writer.append(Int64(level.rate?.burst ?? 0))
            writer.append(Int64(level.perDay ?? -1))
            writer.append(Int64(level.perMonth ?? -1))
            writer.append(Int64(self.lease == nil ? level.concurrency ?? -1 : -1))
        }
        if let lease = self.lease {
            writer.append(Int64(lease.want))
            writer.append(Int64(lease.share))
            writer.append(Int64(lease.giveBack))
            writer.append(Int64(lease.usage.requests))
            writer.append(Int64(lease.usage.cost))
            writer.append(Int64(lease.usage.refused))
            writer.append(lease.meterRefusal ? "1" : "0")
            writer.append(lease.hold)
            writer.append(Int64(lease.forRequest ? lease.need : 0))
            for index in self.levels.indices {
                let giveBack = lease.rateGiveBack.isEmpty ? nil : lease.rateGiveBack[index]
                writer.append(giveBack?.expectedTAT ?? -1)
                writer.append(giveBack?.returnedTAT ?? -1)
            }
        }
        // Set when the day's record is created: it is kept `days` after its UTC day ends.
        if self.usageKey != nil, let days = self.usageRetentionDays {
            writer.append(Int64(days) * 86_400 + secondsCeiling(self.period.untilDayEnd))
        }
    }

    /// The same levels, keys and metering, asking `lease` of `QuotaScript.lease` at `now`.
    public func leasing(_ lease: QuotaLeaseRequest, cost: Int, now: Int64) -> QuotaPlan {
        precondition(now >= 0 && now <= GCRA.maxInstant, "now is outside 0...GCRA.maxInstant")
        let period = now == self.now ? self.period : UTCCalendarPeriod(now: now)
        if period.isSameDay(as: self.period) {
            // The same UTC day (the same instant, for a request's own lease): the same keys and
            // rates. Every refill and give-back of a lease is such a plan; making the levels
            // again built five key strings and a rate per level each time.
            precondition(cost >= 1 && (lease.rateGiveBack.isEmpty || lease.rateGiveBack.count == self.levels.count))
            var plan = self
            plan.now = now
            plan.period = period
            plan.lease = lease
            plan.cost = cost
            return plan
        }
        let usage = self.usageCustomer.flatMap { customer in self.usageRetentionDays.map { (customer: customer, retentionDays: $0) } }
        do {
            return try QuotaPlan(
                levels: self.levelLimits, oem: self.oem, cost: cost, now: now, prefix: self.prefix, inflightTTL: self.inflightTTL, usage: usage, lease: lease
            )
        } catch {
            preconditionFailure("limits that made a plan make another: \(error)")
        }
    }

    /// True when no level limits anything: no Redis round trip is needed.
    public var isUnlimited: Bool { self.levels.isEmpty }

    /// The keys `QuotaScript.release` decrements when an admitted request ends.
    public var inflightKeys: [String] {
        self.levels.filter { $0.concurrency != nil }.map(\.keys.inflight)
    }
}

/// What a `QuotaPlan` asks of `QuotaScript.lease` (see there): a grant of up to `want` units,
/// and what the node gives back and meters with it.
public struct QuotaLeaseRequest: Sendable, Hashable {
    /// A level's rate units given back: its TAT is set to `returnedTAT` if it is still
    /// `expectedTAT` (nothing was admitted there since the lease that set it).
    public struct RateGiveBack: Sendable, Hashable {
        public let expectedTAT: Int64
        public let returnedTAT: Int64

        public init(expectedTAT: Int64, returnedTAT: Int64) {
            self.expectedTAT = expectedTAT
            self.returnedTAT = returnedTAT
        }
    }

    /// Whose lease: the plan's first level need not be the customer's.
    public var customer: NodeID
    /// Units wanted; 0 only gives back and meters.
    public var want: Int
    /// Fewest units that make a grant: the request's cost when a request waits on it (fewer
    /// left at any level: refused, as that request would be); 0 for a refill ahead of need,
    /// which takes what the levels can spare, possibly nothing.
    public var need: Int
    /// A grant takes at most a `share`-th of what any level has left (but at least `need`), so
    /// the nodes asking split what is left instead of the first taking it all.
    public var share: Int
    /// Day and month units given back, at every level, before the grant.
    public var giveBack: Int
    /// One per level (or none at all): rate units given back.
    public var rateGiveBack: [RateGiveBack?]
    /// Admissions and refusals the node decided itself, added to the customer's day.
    public var usage: QuotaUsage
    /// A refusal of this grant is a refused request, metered as such.
    public var meterRefusal: Bool
    /// µs the grant's rate units should stay usable: they are charged from up to this far
    /// ahead when the limit is not already booked further.
    public var hold: Int64
    /// A request waits on this grant and uses `need` of its units at once; the rest are held.
    /// False for a refill: every unit is held.
    public var forRequest: Bool

    public init(
        customer: NodeID, want: Int, need: Int, share: Int = 4, giveBack: Int = 0, rateGiveBack: [RateGiveBack?] = [], usage: QuotaUsage = QuotaUsage(),
        meterRefusal: Bool = false, hold: Int64 = 0, forRequest: Bool = false
    ) {
        precondition(want >= 0 && need >= 0 && need <= max(want, need) && share >= 1 && giveBack >= 0)
        self.customer = customer
        self.want = want
        self.need = need
        self.share = share
        self.giveBack = giveBack
        self.rateGiveBack = rateGiveBack
        self.usage = usage
        self.meterRefusal = meterRefusal
        self.hold = hold
        self.forRequest = forRequest
    }
}

/// Requests admitted (and their cost) and refused, not yet written to the usage meter.
public struct QuotaUsage: Sendable, Hashable {
    public var requests = 0
    public var cost = 0
    public var refused = 0

    public init(requests: Int = 0, cost: Int = 0, refused: Int = 0) {
        self.requests = requests
        self.cost = cost
        self.refused = refused
    }

    public var isEmpty: Bool { self.requests == 0 && self.cost == 0 && self.refused == 0 }
}
