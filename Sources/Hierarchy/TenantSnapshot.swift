/// One compiled, immutable tenant tree: the effective policy of every node and the lookups the
/// data plane needs, each O(1). A snapshot is replaced whole on reload; requests keep the one
/// they started with.
public struct TenantSnapshot: Sendable {
    public let catalog: Catalog
    private let policies: [NodeID: EffectivePolicy]
    /// The declarations, kept for explain (positions dropped).
    let declared: [NodeID: NodeSource]
    private let byPortalDomain: [String: NodeID]
    private let byIssuer: [String: NodeID]
    let cells: [String: CellDescriptor]
    /// Every origin any node allows: the origins a CORS preflight may be answered for.
    public let registeredOrigins: Set<String>

    init(
        catalog: Catalog, policies: [NodeID: EffectivePolicy], declared: [NodeID: NodeSource], byPortalDomain: [String: NodeID],
        byIssuer: [String: NodeID], cells: [String: CellDescriptor]
    ) {
        self.catalog = catalog
        self.policies = policies
        self.declared = declared
        self.byPortalDomain = byPortalDomain
        self.byIssuer = byIssuer
        self.cells = cells
        var origins: Set<String> = []
        // A customer's origins can only narrow its partner's, so OEMs and partners cover all.
        for policy in policies.values where policy.kind != .customer { origins.formUnion(policy.origins) }
        self.registeredOrigins = origins
    }

    public var nodeCount: Int { self.policies.count }

    /// Any node's effective policy.
    public func policy(_ id: NodeID) -> EffectivePolicy? {
        self.policies[id]
    }

    /// A customer's effective policy; nil for unknown ids and for OEMs and partners.
    public func customer(_ id: NodeID) -> EffectivePolicy? {
        guard let policy = self.policies[id], policy.kind == .customer else { return nil }
        return policy
    }

    /// The node whose portal is served on `domain` (lowercase, no port).
    public func node(forPortalDomain domain: String) -> EffectivePolicy? {
        self.byPortalDomain[domain].flatMap { self.policies[$0] }
    }

    /// The node an issuer is registered on: the root of the subtree it may speak for.
    public func node(forIssuer issuer: String) -> EffectivePolicy? {
        self.byIssuer[issuer].flatMap { self.policies[$0] }
    }

    /// All node ids, sorted (for listings and exports).
    public var nodeIDs: [NodeID] {
        self.policies.keys.sorted()
    }
}
