import Hierarchy
import NIOCore
import Quotas

/// Where the admit phase checks and charges quotas: the shared store through
/// `QuotaAdmission` in the gateway; in tests, a store whose answers the test gives, so that
/// admission, each fail mode and a client leaving mid-admission run on a virtual clock.
protocol QuotaStore {
    /// Whether the store can be asked now, known without sending anything. Call on `loop`.
    func storeState(on loop: any EventLoop) -> QuotaStoreState
    /// The admission of `cost` units at every level, metering `customer`'s usage.
    func plan(levels: [LevelLimits], oem: NodeID, cost: Int, now: Int64, meter customer: NodeID?) throws(RateLimitError) -> QuotaPlan
    /// Runs a plan: every level charged, or nothing.
    func admit(_ plan: QuotaPlan, on loop: any EventLoop) -> EventLoopFuture<QuotaDecision>
    /// Gives back the in-flight units of an admitted plan.
    func release(_ plan: QuotaPlan, on loop: any EventLoop) -> EventLoopFuture<Void>
    /// Sends lease refills and give-backs (`QuotaGate.leaseWork`), each refill's result to
    /// `answered` on `loop`.
    @discardableResult
    func send(
        _ plans: [QuotaPlan], on loop: any EventLoop, answered: @escaping @Sendable (Result<QuotaDecision, any Error>, QuotaPlan) -> Void
    ) -> EventLoopFuture<Void>
}

extension QuotaAdmission: QuotaStore {}
