import CoreMetrics

/// `erp_gateway_admin_writes_total{kind, result}`: every admin request that would change
/// something — a tree change, a token revocation or a portal certificate — by how it ended.
/// Reads are not counted.
/// Handles made once, from the backend the process bootstrapped (none in tests).
struct AdminWriteMetrics: Sendable {
    static let name = "erp_gateway_admin_writes_total"

    enum Result: String, CaseIterable {
        /// Committed to the store (a change) or stored and announced (a revocation).
        case committed
        /// Refused before the store: invalid, forbidden, not found, malformed.
        case refused
        /// Lost the compare-and-set every time it was tried.
        case storeBusy = "store-busy"
        case storeUnavailable = "store-unavailable"
    }

    private let tree: [Result: CoreMetrics.Counter]
    private let revocations: [Result: CoreMetrics.Counter]
    private let certificates: [Result: CoreMetrics.Counter]
    private let supportGrants: [Result: CoreMetrics.Counter]

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        func counters(_ kind: String) -> [Result: CoreMetrics.Counter] {
            Dictionary(uniqueKeysWithValues: Result.allCases.map { result in
                (result, CoreMetrics.Counter(label: Self.name, dimensions: [("kind", kind), ("result", result.rawValue)], factory: factory))
            })
        }
        self.tree = counters("tree")
        self.revocations = counters("revocation")
        self.certificates = counters("certificate")
        self.supportGrants = counters("support-grant")
    }

    func tree(_ result: Result) { self.tree[result]?.increment() }
    func revocation(_ result: Result) { self.revocations[result]?.increment() }
    func certificate(_ result: Result) { self.certificates[result]?.increment() }
    func supportGrant(_ result: Result) { self.supportGrants[result]?.increment() }
}
