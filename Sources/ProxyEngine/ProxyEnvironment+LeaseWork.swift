import NIOCore
import Quotas

/// Lease traffic (refills ahead of need, give-backs of idle leases) leaves the loop in batches,
/// off the request path. The loop wakes for it only when the gate has some: a refill or
/// give-back queued, or a sweep due while leases are held. A fixed 10 ms tick woke every idle
/// loop 100 times a second and allocated on each wake (the scheduled task, its promise and
/// callbacks: about 2,500 allocations a second in a debug build with nothing served).
extension ProxyEnvironment {
    /// How long queued refills wait for others to join them (µs): one batch of scripts rather
    /// than one per request that found its lease running low. Kept short because a batch is a
    /// stretch of work on the loop (each script built, each answer read) and in the store, and
    /// requests that arrive meanwhile wait behind it. Gathered for 10 ms, a batch held about four
    /// scripts at bench/compare.sh's paced rate (about 310 scripts a second), and the full
    /// pipeline's p99 at that pace was 1.24 ms against 0.99 ms at 3 ms (`DELAY_MS=1
    /// CONNECTIONS=8 bench/ab.sh`, medians of 8 rounds, lower in each). The price is more,
    /// smaller batches for the store: 0.54 of its wakes per script against 0.26, 9.1 µs of its
    /// CPU per paced request against 7.0 (`DELAY_MS=1 bench/lease-traffic.sh 6`); 1 ms measured
    /// no better p99 than 3 ms and 12.0 µs. A refill still goes out long before its lease runs
    /// dry: it is asked a quarter of a sizing interval ahead (`QuotaLease.runsLow`).
    static let leaseWorkBatchDelay: Int64 = 3_000

    /// Makes sure the loop wakes when the gate next has lease work; an earlier wake already
    /// set is kept. Call after anything that may queue work: an admission, a store's answer,
    /// new limits, a batch sent.
    func wakeForLeaseWork(now: Int64) {
        guard self.quotas != nil, let due = self.quotaGate.nextLeaseWork() else { return }
        let at = max(due, now + Self.leaseWorkBatchDelay)
        if let set = self.leaseWorkAt, set <= at { return }
        self.leaseWorkTask?.cancel()
        self.leaseWorkAt = at
        self.leaseWorkTask = self.eventLoop.assumeIsolated().scheduleTask(in: .microseconds(at - now)) { [self] in
            self.sendLeaseWork()
        }
    }

    /// The gate's reading of the store's reply to an admission; a lease it grants is swept
    /// later, and may want a refill.
    func quotaStoreAnswered(_ result: Result<QuotaDecision, any Error>, plan: QuotaPlan, failMode: QuotaFailMode) -> QuotaGate.Answer {
        let answer = self.quotaGate.storeAnswered(result, plan: plan, failMode: failMode)
        self.wakeForLeaseWork(now: self.wallClock.nowMicroseconds)
        return answer
    }

    private func sendLeaseWork() {
        self.leaseWorkAt = nil
        self.leaseWorkTask = nil
        guard let quotas = self.quotas else { return }
        let now = self.wallClock.nowMicroseconds
        let plans = self.quotaGate.leaseWork(now: now)
        if !plans.isEmpty {
            let bound = NIOLoopBound(self, eventLoop: self.eventLoop)
            quotas.send(plans, on: self.eventLoop) { result, plan in
                let environment = bound.value
                let now = environment.wallClock.nowMicroseconds
                environment.quotaGate.leaseAnswered(result, plan: plan, now: now)
                environment.wakeForLeaseWork(now: now)
            }
        }
        self.wakeForLeaseWork(now: now)
    }
}
