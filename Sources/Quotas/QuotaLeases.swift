import Hierarchy

/// How leases are sized and kept (settings file: `quotas.leases`).
public struct QuotaLeaseSettings: Sendable, Hashable {
    /// µs a lease is sized to last: a customer's refill asks for its observed rate × this
    /// interval (k), or × a third of the shortest rate window on its path when that is shorter
    /// (`QuotaLease.sizingInterval`). 0 turns leases off: every request asks Redis, as
    /// `QuotaScript.admit`.
    public var refreshInterval: Int64
    /// The most units one lease asks for at once.
    public var maxUnits: Int
    /// One grant takes at most this fraction (1/share) of what any level has left.
    public var share: Int
    /// µs without a request after which a lease is given back and forgotten.
    public var idleAfter: Int64
    /// The most customers with a lease on one event loop; past it a new customer is admitted
    /// per request, as without leases. A lease on a three-level path takes about 4 KB.
    public var capacity: Int

    public init(refreshInterval: Int64 = 500_000, maxUnits: Int = 1_000, share: Int = 4, idleAfter: Int64 = 1_000_000, capacity: Int = 20_000) {
        precondition(refreshInterval >= 0 && maxUnits >= 1 && share >= 1 && idleAfter > 0 && capacity >= 0)
        self.refreshInterval = refreshInterval
        self.maxUnits = maxUnits
        self.share = share
        self.idleAfter = idleAfter
        self.capacity = capacity
    }

    /// µs a grant's rate units stay usable at least (`QuotaLeaseRequest.hold`): two refresh
    /// intervals, since a lease sized for one is refilled at half and may be slowed meanwhile.
    public var hold: Int64 { 2 * self.refreshInterval }

    /// Every request asks Redis.
    public static let off = QuotaLeaseSettings(refreshInterval: 0)

    public var isEnabled: Bool { self.refreshInterval > 0 && self.capacity > 0 }
}

/// The leases of one event loop, by customer: which requests they admit, which need a grant,
/// when to refill ahead of need, and which to give back. Pure value; the driver sends the
/// plans it hands out (`QuotaGate.leaseWork`) and hands back the answers.
///
/// Bounded: at most `capacity` leases; one unused for `idleAfter`, or whose UTC day ended, is
/// given back and forgotten at the next sweep (every `idleAfter / 2`).
public struct QuotaLeases: Sendable {
    /// What to do with one request.
    enum Admission {
        /// Admitted from the lease: nothing to ask. What the levels have left as this loop sees
        /// it is `remainingAtGrant` plus the `held` units (`QuotaLease.remaining(at:)`), added by
        /// the headers as they are written rather than in a list made per request.
        case admitted(plan: QuotaPlan, remainingAtGrant: [LevelRemaining], held: Int)
        /// Ask Redis for a grant of `want` units, the request's cost among them (`beginAsk`).
        case ask(want: Int)
        /// No lease for this request (leases off, a concurrency limit, the book full): ask
        /// Redis for this request alone.
        case untracked
    }

    public private(set) var settings: QuotaLeaseSettings
    private(set) var leases: [NodeID: QuotaLease] = [:]
    /// Customers whose lease ran low, in the order they did.
    private var refills: [NodeID] = []
    /// Give-backs not yet sent.
    private var returns: [QuotaPlan] = []
    private var nextSweep: Int64 = 0

    public init(settings: QuotaLeaseSettings = QuotaLeaseSettings()) {
        self.settings = settings
    }

    /// Leases held.
    public var count: Int { self.leases.count }

    public func lease(of customer: NodeID) -> QuotaLease? { self.leases[customer] }

    mutating func admit(levels: [LevelLimits], customer: NodeID, cost: Int, now: Int64) -> Admission {
        guard self.settings.isEnabled, !levels.contains(where: { $0.limits.concurrency != nil }) else { return .untracked }
        guard let index = self.leases.index(forKey: customer) else {
            return self.leases.count < self.settings.capacity ? .ask(want: cost) : .untracked
        }
        // In place: a copy taken out of the dictionary would copy its grants on every write (and
        // reading a field through the values' getter copied the whole lease first).
        let settings = self.settings
        guard let (admission, refill) = Self.admit(&self.leases.values[index], levels: levels, cost: cost, now: now, settings: settings) else {
            self.retire(customer, now: now)
            return .ask(want: cost)
        }
        if refill { self.refills.append(customer) }
        return admission
    }

    /// Nil when the lease no longer fits the request: other limits, or its UTC day is over.
    private static func admit(
        _ lease: inout QuotaLease, levels: [LevelLimits], cost: Int, now: Int64, settings: QuotaLeaseSettings
    ) -> (Admission, refill: Bool)? {
        guard lease.plan.levelLimits == levels, now < lease.validUntil else { return nil }
        lease.noteDemand(cost: cost, now: now, refreshInterval: settings.refreshInterval, maxUnits: settings.maxUnits)
        if lease.asking, now - lease.askedAt >= settings.idleAfter { lease.asking = false }
        if lease.take(cost: cost, now: now) {
            let admitted = Admission.admitted(plan: lease.plan, remainingAtGrant: lease.remainingAtGrant, held: lease.available(at: now))
            return (admitted, Self.wantsRefill(&lease, now: now, settings: settings))
        }
        return (.ask(want: lease.asking ? cost : max(cost, lease.target)), false)
    }

    /// An ask `admit` answered is sent: what the lease has to report rides along.
    mutating func beginAsk(_ customer: NodeID, now: Int64) -> (usage: QuotaUsage, expired: Int) {
        guard let index = self.leases.index(forKey: customer) else { return (QuotaUsage(), 0) }
        if !self.leases.values[index].asking {
            self.leases.values[index].asking = true
            self.leases.values[index].askedAt = now
        }
        return self.leases.values[index].takeReport()
    }

    /// A grant asked by a request arrived: the request's `need` units are used, the rest held.
    mutating func granted(_ grant: QuotaLeaseGrant, plan: QuotaPlan, request: QuotaLeaseRequest) -> [LevelRemaining] {
        // Taken out and put back: a copy left in the dictionary would make every write copy.
        var lease = self.leases.removeValue(forKey: request.customer) ?? QuotaLease(customer: request.customer, plan: plan, now: plan.now)
        guard self.leases.count < self.settings.capacity else {
            // The book filled up while this customer's first grant was on its way.
            lease.add(grant, plan: plan, consumed: request.need)
            if let giveBack = lease.returnPlan(now: plan.now, share: self.settings.share) { self.returns.append(giveBack) }
            return lease.remaining(at: plan.now)
        }
        lease.asking = false
        lease.add(grant, plan: plan, consumed: request.need)
        if Self.wantsRefill(&lease, now: plan.now, settings: self.settings) { self.refills.append(request.customer) }
        self.leases[request.customer] = lease
        return lease.remaining(at: plan.now)
    }

    /// A refill's grant arrived. For a lease forgotten meanwhile, it is given back at once.
    mutating func refilled(_ grant: QuotaLeaseGrant, plan: QuotaPlan, request: QuotaLeaseRequest, now: Int64) {
        guard var lease = self.leases.removeValue(forKey: request.customer) else {
            var orphan = QuotaLease(customer: request.customer, plan: plan, now: now)
            orphan.add(grant, plan: plan, consumed: 0)
            if let giveBack = orphan.returnPlan(now: now, share: self.settings.share) { self.returns.append(giveBack) }
            return
        }
        lease.asking = false
        lease.add(grant, plan: plan, consumed: 0)
        self.leases[request.customer] = lease
    }

    /// An ask was refused or failed: refills wait until `notBefore`; what the ask carried and
    /// Redis did not record (`report`, on a failure) stays for the next one.
    mutating func notGranted(_ request: QuotaLeaseRequest, notBefore: Int64, report: (usage: QuotaUsage, expired: Int)?) {
        guard var lease = self.leases.removeValue(forKey: request.customer) else { return }
        lease.asking = false
        lease.refillNotBefore = max(lease.refillNotBefore, notBefore)
        if let report { lease.restore(report) }
        self.leases[request.customer] = lease
    }

    /// The asks and give-backs to send now: refills of leases running low, and the give-backs
    /// of leases retired since the last call or found idle by this call's sweep.
    mutating func work(now: Int64) -> [QuotaPlan] {
        var plans = self.returns
        self.returns.removeAll()
        for customer in self.refills {
            guard var lease = self.leases.removeValue(forKey: customer) else { continue }
            lease.refillQueued = false
            if !lease.asking, now >= lease.refillNotBefore, now < lease.validUntil, lease.runsLow(at: now, refreshInterval: self.settings.refreshInterval) {
                let report = lease.takeReport()
                let request = QuotaLeaseRequest(
                    customer: customer, want: lease.target, need: 0, share: self.settings.share, giveBack: report.expired, usage: report.usage,
                    hold: self.settings.hold
                )
                lease.asking = true
                lease.askedAt = now
                plans.append(lease.plan.leasing(request, cost: 1, now: now))
            }
            self.leases[customer] = lease
        }
        self.refills.removeAll(keepingCapacity: true)
        if now >= self.nextSweep {
            self.nextSweep = now + self.settings.idleAfter / 2
            // An answer still on its way finds its lease gone and is given back (`refilled`).
            let idle = self.leases.compactMap { customer, lease in
                now - lease.lastUse >= self.settings.idleAfter || now >= lease.validUntil ? customer : nil
            }
            for customer in idle { self.retire(customer, now: now) }
            plans += self.returns
            self.returns.removeAll()
        }
        return plans
    }

    /// When `work` next has something to do: at once (0) while refills or give-backs wait, at
    /// the next sweep while leases are held, never (nil) when none are.
    func nextWork() -> Int64? {
        if !self.refills.isEmpty || !self.returns.isEmpty { return 0 }
        return self.leases.isEmpty ? nil : self.nextSweep
    }

    /// Gives every lease back (a reload, a shutdown): the plans to send. Rate units are given
    /// back as of each lease's latest use, which never gives back a unit already admitted.
    mutating func returnAll(now: Int64?) -> [QuotaPlan] {
        for lease in self.leases.values {
            if let giveBack = lease.returnPlan(now: now ?? lease.lastUse, share: self.settings.share) { self.returns.append(giveBack) }
        }
        self.leases.removeAll()
        self.refills.removeAll()
        defer { self.returns.removeAll() }
        return self.returns
    }

    /// New settings; leases held under the old ones are given back at the next `work`.
    mutating func reconfigure(_ settings: QuotaLeaseSettings) {
        self.returns += self.returnAll(now: nil)
        self.settings = settings
    }

    private mutating func retire(_ customer: NodeID, now: Int64) {
        guard let lease = self.leases.removeValue(forKey: customer) else { return }
        if let giveBack = lease.returnPlan(now: now, share: self.settings.share) { self.returns.append(giveBack) }
    }

    /// Below half its target (and worth a refill: a target above one unit), a lease asks for
    /// another target's worth: a refill has half a refresh interval to arrive before the lease
    /// runs out at the observed rate, and what a lease holds (at most 1.5 targets) is used
    /// within 1.5 intervals, before the held rate units lapse (`QuotaLeaseSettings.hold`).
    /// Units about to lapse do not count (`QuotaLease.runsLow`). True when it is now queued
    /// for a refill.
    private static func wantsRefill(_ lease: inout QuotaLease, now: Int64, settings: QuotaLeaseSettings) -> Bool {
        guard lease.target > 1, !lease.refillQueued, !lease.asking, now >= lease.refillNotBefore,
              lease.runsLow(at: now, refreshInterval: settings.refreshInterval)
        else { return false }
        lease.refillQueued = true
        return true
    }
}
