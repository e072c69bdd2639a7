import Hierarchy
import NIOCore
import RedisClient

/// Checks and charges a request's quotas in Redis: one `EVALSHA` of `QuotaScript.admit` per
/// admission (or of `QuotaScript.lease` per grant, for many admissions), one of
/// `QuotaScript.release` when an admitted request with a concurrency limit ends. No state of its own; call on the event loop serving the request, so the command goes
/// out on that loop's connection without a thread hop.
///
/// Failures (Redis unavailable, connection lost, an error reply) fail the future; choosing a
/// fail mode is the caller's business.
public struct QuotaAdmission: Sendable {
    public let redis: RedisClient
    /// Separates deployments sharing one Redis; the first segment of every key.
    public let prefix: String
    public let inflightTTL: Int64
    /// Days of usage kept when admissions also meter (`plan(…, meter:)`); nil: they never do.
    public let usageRetentionDays: Int?

    public init(redis: RedisClient, prefix: String = "erp", inflightTTL: Int64 = QuotaPlan.defaultInflightTTL, usageRetentionDays: Int? = nil) {
        self.redis = redis
        self.prefix = prefix
        self.inflightTTL = inflightTTL
        self.usageRetentionDays = usageRetentionDays
    }

    /// - Parameter customer: whose usage the admission script meters (requests and cost when
    ///   admitted, a refusal otherwise), when `usageRetentionDays` is set.
    public func plan(levels: [LevelLimits], oem: NodeID, cost: Int, now: Int64, meter customer: NodeID? = nil) throws(RateLimitError) -> QuotaPlan {
        let usage = customer.flatMap { customer in self.usageRetentionDays.map { (customer: customer, retentionDays: $0) } }
        return try QuotaPlan(levels: levels, oem: oem, cost: cost, now: now, prefix: self.prefix, inflightTTL: self.inflightTTL, usage: usage)
    }

    /// - Parameter now: µs since the epoch, from the gateway's clock (see `QuotaScript`).
    public func admit(levels: [LevelLimits], oem: NodeID, cost: Int, now: Int64, on loop: any EventLoop) -> EventLoopFuture<(QuotaPlan, QuotaDecision)> {
        let plan: QuotaPlan
        do {
            plan = try self.plan(levels: levels, oem: oem, cost: cost, now: now)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return self.admit(plan, on: loop).map { (plan, $0) }
    }

    /// Whether `loop`'s connection to the store is up, read without sending anything: while
    /// Redis is down no request waits on a timeout to find out. Call on `loop`.
    public func storeState(on loop: any EventLoop) -> QuotaStoreState {
        self.redis.isAvailable(on: loop) ? .reachable : .unreachable(reason: "redis unavailable")
    }

    /// Runs a prepared plan. A plan without levels is admitted without a round trip.
    public func admit(_ plan: QuotaPlan, on loop: any EventLoop) -> EventLoopFuture<QuotaDecision> {
        guard !plan.isUnlimited else { return loop.makeSucceededFuture(.admitted([])) }
        let (sha, script) = plan.lease == nil ? (QuotaScript.admitSHA, QuotaScript.admit) : (QuotaScript.leaseSHA, QuotaScript.lease)
        return self.redis.evalSHA(on: loop, plan.scriptCall(sha: sha), script: script, slotKey: plan.slotKey)
            .flatMapThrowing { reply in try QuotaDecision(reply: reply, plan: plan) }
    }

    /// Sends the lease traffic `QuotaGate.leaseWork` or `returnLeases` handed out: each refill
    /// through `admit`, its result to `answered` (on `loop`); each give-back on its own, its
    /// failure only stranding units until their limits reset. Completes when every reply is in.
    @discardableResult
    public func send(
        _ plans: [QuotaPlan], on loop: any EventLoop, answered: @escaping @Sendable (Result<QuotaDecision, any Error>, QuotaPlan) -> Void = { _, _ in }
    ) -> EventLoopFuture<Void> {
        guard !plans.isEmpty else { return loop.makeSucceededVoidFuture() }
        let replies = plans.map { plan -> EventLoopFuture<Void> in
            guard plan.lease?.want == 0 else {
                return self.admit(plan, on: loop).always { answered($0, plan) }.map { _ in }.recover { _ in }
            }
            return self.redis.evalSHA(on: loop, plan.scriptCall(sha: QuotaScript.leaseSHA), script: QuotaScript.lease, slotKey: plan.slotKey)
                .map { _ in }.recover { _ in }
        }
        return EventLoopFuture.andAllComplete(replies, on: loop)
    }

    /// Ends an admitted request: decrements the in-flight counters it incremented. Call once
    /// per admitted request, whatever its outcome; never for a refused one.
    public func release(_ plan: QuotaPlan, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let keys = plan.inflightKeys
        guard !keys.isEmpty else { return loop.makeSucceededVoidFuture() }
        return self.redis.evalSHA(on: loop, sha: QuotaScript.releaseSHA, script: QuotaScript.release, keys: keys, args: [])
            .flatMapThrowing { reply in
                guard reply.int64 != nil else { throw QuotaReplyError.scriptError }
            }
    }
}
