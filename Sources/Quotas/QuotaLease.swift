import Hierarchy

/// One customer's lease on one event loop: units `QuotaScript.lease` charged at every level of
/// the customer's path, admitted here one request at a time without asking Redis. A pure
/// value; every instant is µs since the epoch, passed in.
///
/// ## Never more than the limit
/// Day and month units were charged in Redis when granted, so admitting them here cannot pass
/// a calendar limit, whatever the number of nodes: what is leased and what is used never add up
/// to more than the limit. Units are valid only for the UTC day of their grant.
///
/// A rate limit is a GCRA, and a unit granted now but used later could conform to the grant
/// and yet not to the GCRA of the requests as they really arrive (a unit held through an idle
/// spell would add a burst on top of a full bucket). So each unit carries a deadline: unit j
/// (0-based) of a grant charged from base b of a level with emission interval T is used at
/// an instant no later than b + j × T, at every rate level of the path, or never. With that
/// rule the requests really admitted, from any number of nodes, conform to the GCRA of every
/// level: the units used in any interval [x, y] form one run of the level's chain of grants
/// whose last unit's theoretical arrival is at most y + burst × T and whose first is after x,
/// so there are at most burst + (y − x) / T of them. A unit past its deadline is skipped; its
/// day and month units are given back with the next grant or return (`expiredUnits`).
public struct QuotaLease: Sendable {
    /// One grant: units `next..<units` not yet used.
    struct Block: Sendable {
        let units: Int
        var next: Int
        /// Per rate level of the path: the base the grant was charged from and the interval.
        let rates: [(base: Int64, interval: Int64)]

        /// The first unit whose deadline is not before `now` at every rate level.
        func firstUsable(at now: Int64) -> Int {
            var first = self.next
            for rate in self.rates where now > rate.base {
                // ⌈(now − base) / T⌉: the first j with base + j × T ≥ now.
                first = max(first, Int((now - rate.base + rate.interval - 1) / rate.interval))
            }
            return min(first, self.units)
        }
    }

    /// The plan of the latest grant: the levels, their keys and period, and what a refill or a
    /// return is made from (`QuotaPlan.leasing`).
    public private(set) var plan: QuotaPlan {
        didSet { self.rateWindowThird = Self.rateWindowThird(of: self.plan) }
    }
    /// A third of the shortest rate window on the plan's path (nil without a rate limit), which
    /// bounds the interval a lease is sized for (`sizingInterval`). Read on every admission;
    /// found once per plan rather than by walking the plan's levels each time (0.4 % of a paced
    /// full-pipeline profile's samples, `DELAY_MS=1 bench/profile.sh full`).
    private var rateWindowThird: Int64?
    public let customer: NodeID
    /// The UTC day of the grants ends: the lease is good until then.
    public private(set) var validUntil: Int64
    private(set) var blocks: [Block] = []
    /// What the levels had left at the latest grant, for the RateLimit headers (with the units
    /// held here added: `remaining(at:)`, or `RateLimitHeaders.fields(admitted:held:plan:)`).
    private(set) var remainingAtGrant: [LevelRemaining]
    /// Day and month units skipped because their rate deadline passed, to give back.
    public private(set) var expiredUnits = 0
    /// Admissions from the lease, not yet metered.
    public private(set) var usage = QuotaUsage()
    /// The latest request this lease saw.
    public private(set) var lastUse: Int64
    /// Units wanted per refill (k): the customer's observed rate × the refresh interval.
    public private(set) var target: Int
    private var windowStart: Int64
    private var windowUnits = 0
    /// A grant for this lease is on its way (asked by a request or by a refill) since
    /// `askedAt`. An answer can be lost (the request that asked went away before it came), so
    /// an ask older than the idle interval counts as answered (`QuotaLeases`).
    public var asking = false
    public var askedAt: Int64 = 0
    /// No refill is asked before this instant (a refill was refused or failed).
    public var refillNotBefore: Int64 = 0
    /// Queued for a refill by the loop's book.
    var refillQueued = false

    /// A lease holding nothing yet, made by the first grant's plan.
    init(customer: NodeID, plan: QuotaPlan, now: Int64) {
        self.customer = customer
        self.plan = plan
        self.rateWindowThird = Self.rateWindowThird(of: plan)
        self.validUntil = plan.now + plan.period.untilDayEnd
        self.remainingAtGrant = []
        self.lastUse = now
        self.windowStart = now
        self.target = 1
    }

    /// Units usable by a request at `now`.
    public func available(at now: Int64) -> Int {
        guard now < self.validUntil else { return 0 }
        return self.blocks.reduce(0) { $0 + $1.units - $1.firstUsable(at: now) }
    }

    /// Whether this lease wants a refill at `now`: fewer than half its target usable — counting
    /// only the units still usable a quarter of a sizing interval from now. In a steady stream a
    /// grant's units are used before their deadlines and this is the half-target rule alone;
    /// when the customer slowed down after a grant (or a grant was booked close to now), its
    /// units lapse together at their deadlines, and the refill is asked ahead of that instead
    /// of by the request that finds the lease empty. A quarter interval is one request's gap
    /// for a target of 4, so a customer sending fewer requests than that may still find it empty.
    func runsLow(at now: Int64, refreshInterval: Int64) -> Bool {
        let lead = self.sizingInterval(refreshInterval: refreshInterval) / 4
        return self.available(at: min(now + lead, self.validUntil - 1)) * 2 <= self.target
    }

    /// Units not used, past their deadline or not: what a return gives back to the calendar
    /// limits.
    public var unusedUnits: Int {
        self.blocks.reduce(self.expiredUnits) { $0 + $1.units - $1.next }
    }

    /// The interval a lease of this plan is sized for: the refresh interval, or a third of the
    /// shortest rate window on the path when that is shorter. A grant's rate units are booked
    /// at most half a window ahead (`QuotaScript.lease`), so they are usable for about half a
    /// window; a lease is used up within 1.5 of its intervals (refilled at half), so a lease
    /// sized for more than a third of the window would see its last units lapse unused and
    /// its requests ask Redis themselves.
    static func sizingInterval(refreshInterval: Int64, plan: QuotaPlan) -> Int64 {
        min(refreshInterval, self.rateWindowThird(of: plan) ?? .max)
    }

    /// `sizingInterval` of this lease's plan.
    func sizingInterval(refreshInterval: Int64) -> Int64 {
        min(refreshInterval, self.rateWindowThird ?? .max)
    }

    private static func rateWindowThird(of plan: QuotaPlan) -> Int64? {
        var third: Int64?
        for level in plan.levels {
            if let rate = level.rate { third = min(third ?? .max, max(rate.window / 3, 1)) }
        }
        return third
    }

    /// Counts `cost` units of demand at `now` toward the rate the next refills are sized by:
    /// units per sizing interval (`sizingInterval`), in 1...maxUnits, measured over one
    /// refresh interval — or, for a lease still at one unit, as soon as 2 units came after the
    /// grant that made it and a sixteenth of an interval passed, so that a customer starting
    /// (or resuming after a quiet interval) asks Redis for its first three requests, not for
    /// every request of a whole interval (sized at 8 units, a customer at 45 a second asked for
    /// 9: `PAUSE=3 DELAY_MS=1 bench/lease-traffic.sh 2`, 100 such customers resuming, had 8.3 %
    /// of its requests wait for Redis, 3.5 % at 2). The sixteenth bounds what so few units can
    /// claim: 2 units in 31 ms of a 500 ms interval size for 64 a second.
    mutating func noteDemand(cost: Int, now: Int64, refreshInterval: Int64, maxUnits: Int) {
        self.lastUse = now
        self.windowUnits += cost
        let elapsed = now - self.windowStart
        let early = self.target == 1 && self.windowUnits >= 2 && elapsed >= refreshInterval / 16
        guard elapsed >= refreshInterval || early else { return }
        let sizedFor = self.sizingInterval(refreshInterval: refreshInterval)
        let perInterval = Int((Int64(self.windowUnits) * sizedFor) / elapsed)
        self.target = min(max(perInterval, 1), maxUnits)
        self.windowStart = now
        self.windowUnits = 0
    }

    /// Admits `cost` units at `now` from the oldest grants first; false (nothing taken) when
    /// fewer are usable.
    mutating func take(cost: Int, now: Int64) -> Bool {
        guard self.available(at: now) >= cost else { return false }
        var left = cost
        var index = 0
        while left > 0 {
            let first = self.blocks[index].firstUsable(at: now)
            let taken = min(left, self.blocks[index].units - first)
            self.expiredUnits += first - self.blocks[index].next
            self.blocks[index].next = first + taken
            left -= taken
            index += 1
        }
        self.dropSpentBlocks(now: now)
        self.usage.requests += 1
        self.usage.cost += cost
        return true
    }

    /// Adds a grant made by `plan`; its first `consumed` units were admitted at the plan's
    /// instant (the request that asked, metered by the script), the rest are held from the bases
    /// the grant reports.
    ///
    /// Units of a UTC day that is over stay with that day: never given back to another one.
    mutating func add(_ grant: QuotaLeaseGrant, plan: QuotaPlan, consumed: Int) {
        let validUntil = plan.now + plan.period.untilDayEnd
        if validUntil < self.validUntil { return }
        if validUntil > self.validUntil {
            self.blocks.removeAll()
            self.expiredUnits = 0
        }
        self.plan = plan
        self.validUntil = validUntil
        self.remainingAtGrant = grant.remaining
        var rates: [(base: Int64, interval: Int64)] = []
        for (level, base) in zip(plan.levels, grant.rateBases) {
            if let rate = level.rate, let base { rates.append((base, rate.emissionInterval)) }
        }
        // The units the asking request used were charged ahead of the held ones.
        if grant.units > consumed { self.blocks.append(Block(units: grant.units - consumed, next: 0, rates: rates)) }
        self.dropSpentBlocks(now: plan.now)
    }

    /// Takes the usage and expired units to send with a grant or return; `restore` puts them
    /// back if it fails.
    mutating func takeReport() -> (usage: QuotaUsage, expired: Int) {
        defer {
            self.usage = QuotaUsage()
            self.expiredUnits = 0
        }
        return (self.usage, self.expiredUnits)
    }

    mutating func restore(_ report: (usage: QuotaUsage, expired: Int)) {
        self.usage.requests += report.usage.requests
        self.usage.cost += report.usage.cost
        self.usage.refused += report.usage.refused
        self.expiredUnits += report.expired
    }

    /// The plan that gives back everything this lease holds at `now`, with its usage, as it is
    /// forgotten; nil when there is nothing to give back or meter. Day and month units are
    /// given back whole; rate units only from the latest grant, and only if Redis's TAT is
    /// still the one that grant set (`QuotaScript.lease`).
    ///
    /// Once the lease's UTC day has ended the plan is made at the grant's instant, so that its
    /// keys are that day's and month's: the month gets its units back, and the usage lands on
    /// the day it was admitted; rate units have lapsed by then.
    func returnPlan(now: Int64, share: Int) -> QuotaPlan? {
        let giveBack = self.unusedUnits
        var rateGiveBack: [QuotaLeaseRequest.RateGiveBack?] = []
        if let last = self.blocks.last, now < self.validUntil {
            let first = last.firstUsable(at: now)
            if first < last.units {
                var rates = last.rates.makeIterator()
                for level in self.plan.levels {
                    guard level.rate != nil, let rate = rates.next() else {
                        rateGiveBack.append(nil)
                        continue
                    }
                    rateGiveBack.append(.init(
                        expectedTAT: rate.base + Int64(last.units) * rate.interval, returnedTAT: rate.base + Int64(first) * rate.interval
                    ))
                }
            }
        }
        if !rateGiveBack.contains(where: { $0 != nil }) { rateGiveBack = [] }
        guard giveBack > 0 || !rateGiveBack.isEmpty || !self.usage.isEmpty else { return nil }
        let request = QuotaLeaseRequest(
            customer: self.customer, want: 0, need: 0, share: share, giveBack: giveBack, rateGiveBack: rateGiveBack, usage: self.usage
        )
        return self.plan.leasing(request, cost: 1, now: now < self.validUntil ? now : self.plan.now)
    }

    /// What the levels have left as this node sees it — Redis's count at the latest grant plus
    /// the units held here — for the RateLimit headers of an admission from the lease.
    func remaining(at now: Int64) -> [LevelRemaining] {
        let held = self.available(at: now)
        return self.remainingAtGrant.map { left in
            LevelRemaining(
                node: left.node, kind: left.kind, rate: left.rate.map { $0 + held }, rateResetMilliseconds: left.rateResetMilliseconds,
                day: left.day.map { $0 + held }, month: left.month.map { $0 + held }, concurrency: nil
            )
        }
    }

    private mutating func dropSpentBlocks(now: Int64) {
        while let first = self.blocks.first, first.firstUsable(at: now) >= first.units {
            self.expiredUnits += first.units - first.next
            self.blocks.removeFirst()
        }
    }
}
