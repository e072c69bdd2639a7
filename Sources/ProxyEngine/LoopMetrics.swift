import CoreMetrics
import GatewayConfig
import Quotas

/// The counters one event loop feeds from the phases themselves (what a `RequestRecord` does not
/// carry): quota decisions, token verifications, retry-budget refusals and outlier ejections,
/// plus the loop's share of the upstream pool gauges. Loop-confined; every handle is made once,
/// so counting costs an array index or a lookup in a dictionary of a few entries, and an atomic add.
final class LoopMetrics {
    /// How the admit phase decided, as the `decision` and `source` labels of
    /// `erp_gateway_quota_decisions_total`.
    enum QuotaOutcome: Int, CaseIterable {
        /// Admitted from units a lease granted this loop ahead (or the tenant has no limits).
        case admittedFromLease
        /// Admitted and charged by the shared store in a round trip.
        case admittedByStore
        /// Admitted without the store, which is away, by the tier's `open` fail mode.
        case admittedFailOpen
        /// Admitted by the `local` fail mode's in-memory rate limits while the store is away.
        case admittedByLocalLimits
        /// Admitted without checking: the tenant's limits could not be turned into a plan.
        case admittedUnchecked
        case refusedByStore
        /// Refused from the loop's memory of a refusal the store gave.
        case refusedFromMemory
        case refusedByLocalLimits
        /// Refused with 503 by the tier's `closed` fail mode while the store is away.
        case refusedFailClosed

        var labels: (decision: String, source: String) {
            switch self {
            case .admittedFromLease: ("admitted", "lease")
            case .admittedByStore: ("admitted", "store")
            case .admittedFailOpen: ("admitted", "fail-open")
            case .admittedByLocalLimits: ("admitted", "local-limits")
            case .admittedUnchecked: ("admitted", "unchecked")
            case .refusedByStore: ("refused", "store")
            case .refusedFromMemory: ("refused", "memory")
            case .refusedByLocalLimits: ("refused", "local-limits")
            case .refusedFailClosed: ("refused", "fail-closed")
            }
        }

        /// What the loop's `QuotaGate` answered, told apart where the answer alone does not say
        /// (a plain `proceed` is a lease, or the `local` fail mode while the store is away).
        /// - Parameter storeAnswered: whether `answer` is the gate's reading of the store's
        ///   reply (`QuotaGate.storeAnswered`) rather than its first answer (`admit`), where an
        ///   admission is one from a lease.
        init?(_ answer: QuotaGate.Answer, storeAnswered: Bool, storeReachable: Bool, failMode: QuotaFailMode) {
            switch answer {
            case .proceed: self = !storeReachable && failMode == .local ? .admittedByLocalLimits : .admittedFromLease
            case .proceedUnchecked(let warning): self = warning.failMode == nil ? .admittedUnchecked : .admittedFailOpen
            case .askStore: return nil
            case .admitted: self = storeAnswered ? .admittedByStore : .admittedFromLease
            case .refuse(let refusal):
                switch refusal.source {
                case .memory: self = .refusedFromMemory
                case .store: self = .refusedByStore
                case .localLimits: self = .refusedByLocalLimits
                }
            case .refuseStoreAway: self = .refusedFailClosed
            }
        }
    }

    /// How the authenticate phase got a verified token, or why it got none.
    enum TokenCheck {
        case cacheHit
        /// A signature checked (the token was not in the loop's cache).
        case verified
        /// The verifier refused it; the slug is the `TokenRejection`'s (a fixed set).
        case rejected(slug: String)
    }

    private let factory: any MetricsFactory
    /// Indexed by tier (pooled, dedicated), then `QuotaOutcome.rawValue`.
    private let quotaDecisions: [[CoreMetrics.Counter]]
    private let tokenCacheHits: CoreMetrics.Counter
    private let tokensVerified: CoreMetrics.Counter
    private var tokenRejections: [String: CoreMetrics.Counter] = [:]
    private var retryBudgetRefusals: [String: CoreMetrics.Counter] = [:]
    private var ejections: [String: CoreMetrics.Counter] = [:]
    private let poolOpen: CoreMetrics.Meter
    private let poolIdle: CoreMetrics.Meter
    private let poolWaiting: CoreMetrics.Meter
    /// What this loop last added to the process-wide pool gauges (each loop adds its own share).
    private var poolShare = UpstreamPool.Occupancy()

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        self.quotaDecisions = [GatewaySettings.Cell.Kind.pooled, .dedicated].map { tier in
            QuotaOutcome.allCases.map { outcome in
                let (decision, source) = outcome.labels
                return CoreMetrics.Counter(
                    label: MetricCatalog.quotaDecisions, dimensions: [("tier", tier.rawValue), ("decision", decision), ("source", source)], factory: factory
                )
            }
        }
        self.tokenCacheHits = CoreMetrics.Counter(
            label: MetricCatalog.tokenVerifications, dimensions: [("result", "cache-hit"), ("reason", "")], factory: factory
        )
        self.tokensVerified = CoreMetrics.Counter(
            label: MetricCatalog.tokenVerifications, dimensions: [("result", "verified"), ("reason", "")], factory: factory
        )
        self.poolOpen = CoreMetrics.Meter(label: MetricCatalog.poolConnections, dimensions: [("state", "open")], factory: factory)
        self.poolIdle = CoreMetrics.Meter(label: MetricCatalog.poolConnections, dimensions: [("state", "idle")], factory: factory)
        self.poolWaiting = CoreMetrics.Meter(label: MetricCatalog.poolWaiting, dimensions: [], factory: factory)
    }

    func quotaDecided(_ outcome: QuotaOutcome, tier: GatewaySettings.Cell.Kind) {
        self.quotaDecisions[tier == .pooled ? 0 : 1][outcome.rawValue].increment()
    }

    func tokenChecked(_ check: TokenCheck) {
        switch check {
        case .cacheHit: self.tokenCacheHits.increment()
        case .verified: self.tokensVerified.increment()
        case .rejected(let slug): self.counter(MetricCatalog.tokenVerifications, [("result", "rejected"), ("reason", slug)], in: &self.tokenRejections, key: slug).increment()
        }
    }

    func retryRefusedByBudget(cell: String) {
        self.counter(MetricCatalog.retryBudgetRefusals, [("cell", cell)], in: &self.retryBudgetRefusals, key: cell).increment()
    }

    func endpointEjected(cell: String) {
        self.counter(MetricCatalog.endpointEjections, [("cell", cell)], in: &self.ejections, key: cell).increment()
    }

    /// Brings this loop's share of the pool gauges to `occupancy` (called once a second).
    func poolSampled(_ occupancy: UpstreamPool.Occupancy) {
        self.poolOpen.increment(by: Double(occupancy.open - self.poolShare.open))
        self.poolIdle.increment(by: Double(occupancy.idle - self.poolShare.idle))
        self.poolWaiting.increment(by: Double(occupancy.waiting - self.poolShare.waiting))
        self.poolShare = occupancy
    }

    private func counter(_ label: String, _ dimensions: [(String, String)], in handles: inout [String: CoreMetrics.Counter], key: String) -> CoreMetrics.Counter {
        if let found = handles[key] { return found }
        let made = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: self.factory)
        handles[key] = made
        return made
    }
}
