/// One compiled, immutable tenant tree: the effective policy of every node and the lookups the
/// data plane needs, each O(1). A snapshot is replaced whole on reload; requests keep the one
/// they started with.
///
/// An object: every request's authorize phase took the snapshot from its configuration, and as
/// a value that copy retained and released each of its tables (a profile's `TenantSnapshotVwcp`).
public final class TenantSnapshot: Sendable {
    public let catalog: Catalog
    let policies: NodeMap<EffectivePolicy>
    /// The declarations, kept for explain (positions dropped).
    let declared: NodeMap<NodeSource>
    let byPortalDomain: [String: NodeID]
    let byIssuer: [String: NodeID]
    let cells: [String: CellDescriptor]
    /// Every origin any node allows: the origins a CORS preflight may be answered for.
    public let registeredOrigins: Set<String>
    /// What a later change needs to recompile only the part of the tree it touches.
    let state: CompiledState

    init(
        catalog: Catalog, policies: NodeMap<EffectivePolicy>, declared: NodeMap<NodeSource>, byPortalDomain: [String: NodeID],
        byIssuer: [String: NodeID], cells: [String: CellDescriptor], state: CompiledState
    ) {
        self.catalog = catalog
        self.policies = policies
        self.declared = declared
        self.byPortalDomain = byPortalDomain
        self.byIssuer = byIssuer
        self.cells = cells
        self.state = state
        var origins: Set<String> = []
        // A customer's origins can only narrow its partner's, so OEMs and partners cover all;
        // those are exactly the nodes with inheritable state (a few thousand, not every customer).
        for inherited in state.resolved.values { origins.formUnion(inherited.origins ?? []) }
        self.registeredOrigins = origins
    }

    /// A node's declaration as compiled (positions dropped); nil for an unknown id.
    public func declaration(_ id: NodeID) -> NodeSource? {
        self.declared[id]
    }

    /// The ids of a node's children (none for a customer or an unknown id).
    public func children(of id: NodeID) -> [NodeID] {
        self.state.children[id] ?? []
    }

    /// Whether both snapshots serve the same tree: every policy, declaration and lookup equal.
    /// What an incremental compile is checked against (a full compile of the same tree).
    public func servesSameTree(as other: TenantSnapshot) -> [String] {
        var differences: [String] = []
        if self.policies.count != other.policies.count { differences.append("node count \(self.policies.count) ≠ \(other.policies.count)") }
        for (id, policy) in self.policies where other.policies[id] != policy {
            differences.append("policy of \(id)")
        }
        for (id, node) in self.declared where !(other.declared[id].map(node.declares(sameAs:)) ?? false) {
            differences.append("declaration of \(id)")
        }
        if self.byPortalDomain != other.byPortalDomain { differences.append("portal domains") }
        if self.byIssuer != other.byIssuer { differences.append("issuers") }
        if self.registeredOrigins != other.registeredOrigins { differences.append("registered origins") }
        let children = { (state: CompiledState) in state.children.filter { !$0.value.isEmpty }.mapValues(Set.init) }
        if children(self.state) != children(other.state) { differences.append("children") }
        if self.state.dedicatedUsers.filter({ !$0.value.isEmpty }).mapValues(Set.init) != other.state.dedicatedUsers.filter({ !$0.value.isEmpty }).mapValues(Set.init) {
            differences.append("dedicated cells")
        }
        if Set(self.state.resolved.keys) != Set(other.state.resolved.keys) { differences.append("inheritable state") }
        for (id, inherited) in self.state.resolved where !(other.state.resolved[id].map(inherited.sameInheritance(as:)) ?? false) {
            differences.append("inheritable state of \(id)")
        }
        return differences.sorted()
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
