import GatewayConfig
import JSONText

/// Whether this gateway process should be sent traffic, and if not, every reason why — as a
/// value of what the process knows, so each rule has a test without a socket. A reason is only
/// a reason when it actually refuses traffic: a dead quota store under an `open` fail mode
/// admits, so it is no reason; under `closed` it refuses that tier, so it is.
///
/// Readiness speaks for the process: a cell that is down is down for every node alike, so a
/// load balancer taking this node out gains nothing for that cell. The reasons say which cell,
/// so an operator sees at once whether the whole node or one cell's backends are at fault.
public struct Readiness: Sendable, Hashable {
    public enum Reason: Sendable, Hashable {
        /// No configuration is installed yet (the admin store is still being read, say).
        case noConfiguration
        /// The process is shutting down: it finishes what it has and takes nothing new.
        case draining
        /// Every endpoint of the cell fails its health checks, and no fallback it may use has a
        /// healthy one: its customers are refused `no-healthy-upstream`.
        case cellUnavailable(cell: String)
        /// The quota store is unreachable and the tier's fail mode is `closed`: its customers
        /// are refused `quota-store-unavailable`.
        case quotaStoreUnreachable(tier: GatewaySettings.Cell.Kind)

        /// A fixed slug, safe in a log line.
        public var slug: String {
            switch self {
            case .noConfiguration: "no-configuration"
            case .draining: "draining"
            case .cellUnavailable: "cell-unavailable"
            case .quotaStoreUnreachable: "quota-store-unreachable"
            }
        }
    }

    /// What readiness is judged from, for one cell: its place in the settings and how many of
    /// its endpoints the health checker holds healthy.
    public struct Cell: Sendable, Hashable {
        public var id: String
        public var kind: GatewaySettings.Cell.Kind
        public var region: String
        public var fallback: [String]
        public var endpoints: Int
        public var healthyEndpoints: Int

        public init(id: String, kind: GatewaySettings.Cell.Kind, region: String, fallback: [String], endpoints: Int, healthyEndpoints: Int) {
            self.id = id
            self.kind = kind
            self.region = region
            self.fallback = fallback
            self.endpoints = endpoints
            self.healthyEndpoints = healthyEndpoints
        }
    }

    /// Empty when ready; otherwise in a stable order (configuration, cells in settings order,
    /// tiers).
    public let reasons: [Reason]

    public var isReady: Bool { self.reasons.isEmpty }

    public init(reasons: [Reason]) {
        self.reasons = reasons
    }

    /// - Parameters:
    ///   - configured: whether a configuration is installed; without one nothing else counts.
    ///   - cells: every cell of the settings in force, with its health.
    ///   - quotaStoreReachable: nil without a quota store; false when any event loop's
    ///     connection to it is known to be down (that loop refuses under `closed`).
    ///   - failModes: `quotas.failMode` per tier.
    public static func evaluate(
        configured: Bool, cells: [Cell], quotaStoreReachable: Bool?, failModes: [GatewaySettings.Cell.Kind: GatewaySettings.QuotaFailMode]
    ) -> Readiness {
        guard configured else { return Readiness(reasons: [.noConfiguration]) }
        var reasons: [Reason] = []
        let byID = Dictionary(cells.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for cell in cells where cell.endpoints > 0 && cell.healthyEndpoints == 0 {
            // A fallback counts when the router would use it for every customer of the cell:
            // pooled (the router's rule), and in the cell's own region, which every customer
            // placed there allows; one in another region serves only some of them.
            let rescued = cell.fallback.contains { name in
                guard let fallback = byID[name] else { return false }
                return fallback.kind == .pooled && fallback.region == cell.region && fallback.healthyEndpoints > 0
            }
            if !rescued { reasons.append(.cellUnavailable(cell: cell.id)) }
        }
        if quotaStoreReachable == false {
            for tier in [GatewaySettings.Cell.Kind.pooled, .dedicated] where failModes[tier] == .closed {
                // A tier without cells has no traffic to refuse.
                if cells.contains(where: { $0.kind == tier }) { reasons.append(.quotaStoreUnreachable(tier: tier)) }
            }
        }
        return Readiness(reasons: reasons)
    }

    /// The `/readyz` body: `{"ready":false,"reasons":[{"reason":"cell-unavailable","cell":"eu-1",...}]}`.
    public var json: String {
        let items = self.reasons.map { reason -> String in
            switch reason {
            case .noConfiguration:
                return #"{"reason":"no-configuration","detail":"no configuration is installed yet"}"#
            case .draining:
                return #"{"reason":"draining","detail":"the process is shutting down"}"#
            case .cellUnavailable(let cell):
                return #"{"reason":"cell-unavailable","cell":\#(JSONText.quote(cell)),"detail":"every endpoint fails its health checks and no fallback in its region has a healthy one"}"#
            case .quotaStoreUnreachable(let tier):
                return #"{"reason":"quota-store-unreachable","tier":"\#(tier.rawValue)","detail":"the quota store is unreachable and this tier's fail mode is closed"}"#
            }
        }
        return #"{"ready":\#(self.isReady),"reasons":[\#(items.joined(separator: ","))]}"#
    }
}
