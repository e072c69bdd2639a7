/// Recompiling only what a change touches. An admin change rewrites one node (or a handful);
/// compiling 100,000 customers again for it takes over a second, while the changed node's subtree
/// and the lookups that point into it are all that can differ. The result is a new snapshot that
/// shares every untouched policy with the old one (dictionary values are copied by reference
/// counting, not rebuilt): the old snapshot keeps serving unchanged until the new one is swapped
/// in whole.
///
/// The same `Compilation.resolve` runs for each touched node as in a full compile, started from
/// the old snapshot's state, so a value is resolved by exactly one piece of code. Whatever the
/// incremental path cannot decide on its own — a structural change (a new kind, a missing or
/// wrong parent), a catalog or cell change, any issue at all — is handed to the full compiler,
/// which then gives the same verdict and the same issue list as it always did.
extension TreeCompiler {
    /// `source` is the whole tree after the change; `changed` are the declarations that differ
    /// from the tree `previous` was compiled from (new or changed nodes), `removed` the ids no
    /// longer in it. Equal to `compile(source)` in result and in errors.
    public static func compile(
        _ source: TreeSource, reusing previous: TenantSnapshot, changed: [NodeSource], removed: Set<String>
    ) throws(TreeValidationError) -> TenantSnapshot {
        if let snapshot = Compilation.incremental(source: source, previous: previous, changed: changed, removed: removed) {
            return snapshot
        }
        return try self.compile(source)
    }
}

/// The part of a compilation a later change starts from: the inheritable state of every OEM and
/// partner, who hangs under whom, and the uses of dedicated cells. A few thousand entries for a
/// tree of 100,000 customers (customers keep no inheritable state).
struct CompiledState: Sendable {
    /// The catalog as declared: a change to it recompiles everything.
    struct CatalogKey: Sendable, Equatable {
        var features: [String]
        var requires: [String: [String]]
        var packages: [PackageSource]
        var routes: [RouteSource]

        init(_ catalog: CatalogSource) {
            self.features = catalog.features
            self.requires = catalog.requires
            self.packages = catalog.packages
            self.routes = catalog.routes
        }
    }

    let catalogSource: CatalogKey
    let cellList: [CellDescriptor]
    let resolved: [NodeID: Compilation.Resolved]
    let children: [NodeID: [NodeID]]
    let dedicatedUsers: [String: [NodeID]]
}

extension Compilation.Resolved {
    /// Field by field: what the children of two nodes would inherit is the same.
    func sameInheritance(as other: Self) -> Bool {
        self.path == other.path && self.suspendedBy == other.suspendedBy && self.allowed == other.allowed
            && self.oemPackages == other.oemPackages && self.ceilings == other.ceilings && self.customerDefaults == other.customerDefaults
            && self.placement?.placement == other.placement?.placement && self.placement?.node == other.placement?.node
            && self.residency == other.residency && self.branding == other.branding && self.lockedBy == other.lockedBy
            && self.effectiveBranding == other.effectiveBranding && self.origins == other.origins && self.levels == other.levels
            && self.partnerIssuerSelfService == other.partnerIssuerSelfService && self.supportAccess == other.supportAccess && self.masking == other.masking
    }
}

extension Compilation.LimitCeilings: Equatable {
    static func == (lhs: Self, rhs: Self) -> Bool {
        (0..<5).allSatisfy { lhs[$0]?.value == rhs[$0]?.value && lhs[$0]?.node == rhs[$0]?.node }
    }
}

extension Compilation {
    /// The new snapshot, or nil when only a full compile can decide (see `TreeCompiler.compile(_:reusing:changed:removed:)`).
    static func incremental(source: TreeSource, previous: TenantSnapshot, changed: [NodeSource], removed: Set<String>) -> TenantSnapshot? {
        let state = previous.state
        guard CompiledState.CatalogKey(source.catalog) == state.catalogSource, source.cells == state.cellList else { return nil }
        var compilation = Compilation(source: source)
        compilation.catalog = previous.catalog
        compilation.declared = previous.declared
        compilation.resolved = state.resolved
        compilation.policies = previous.policies
        compilation.byPortalDomain = previous.byPortalDomain
        compilation.byIssuer = previous.byIssuer
        compilation.dedicatedUsers = state.dedicatedUsers
        var children = state.children

        var removedIDs: Set<NodeID> = []
        for text in removed {
            guard let id = try? NodeID(text), compilation.declared[id] != nil else { return nil }
            removedIDs.insert(id)
        }
        var changedIDs: [NodeID] = []
        var changedByID: [NodeID: NodeSource] = [:]
        for node in changed {
            guard let id = try? NodeID(node.id), changedByID[id] == nil, !removedIDs.contains(id) else { return nil }
            // A node that changes kind changes what may hang under it: the full compiler judges that.
            if let old = compilation.declared[id], old.kind != node.kind { return nil }
            changedByID[id] = node
            changedIDs.append(id)
        }

        /// Takes a node's entries out of the lookups, so that resolving it again finds them free.
        func forget(_ id: NodeID, _ node: NodeSource, in compilation: inout Compilation) {
            for domain in node.portalDomains where compilation.byPortalDomain[domain] == id { compilation.byPortalDomain[domain] = nil }
            for issuer in node.issuers where compilation.byIssuer[issuer] == id { compilation.byIssuer[issuer] = nil }
            if let cell = compilation.policies[id]?.cell, compilation.cells[cell]?.kind == .dedicated {
                compilation.dedicatedUsers[cell]?.removeAll { $0 == id }
            }
        }
        func parentID(_ node: NodeSource) -> NodeID? { node.parent.flatMap { try? NodeID($0) } }

        for id in removedIDs {
            let node = compilation.declared[id]!
            // Nothing may be left hanging under a removed node, unless it moves away in this change.
            for child in children[id] ?? [] where !removedIDs.contains(child) {
                guard let moved = changedByID[child], parentID(moved) != id else { return nil }
            }
            forget(id, node, in: &compilation)
            if let parent = parentID(node) { children[parent]?.removeAll { $0 == id } }
            children[id] = nil
            compilation.declared[id] = nil
            compilation.policies[id] = nil
            compilation.resolved[id] = nil
        }
        // Old places first, for every changed node, so that the new ones are checked against the tree after the change.
        for id in changedIDs {
            guard let old = compilation.declared[id] else { continue }
            if let parent = parentID(old) { children[parent]?.removeAll { $0 == id } }
        }
        for id in changedIDs {
            let node = changedByID[id]!
            if node.kind == .oem {
                guard node.parent == nil else { return nil }
            } else {
                guard let parent = parentID(node), parent != id, !removedIDs.contains(parent),
                    let parentNode = changedByID[parent] ?? compilation.declared[parent],
                    parentNode.kind == (node.kind == .customer ? NodeKind.partner : .oem)
                else { return nil }
                children[parent, default: []].append(id)
            }
            // A node moved under a new parent keeps its own children; a new node has none yet.
            if compilation.declared[id] == nil, node.kind != .customer { children[id] = children[id] ?? [] }
        }

        // Everything at or below a changed node, parents before children (kinds are levels).
        var affected: Set<NodeID> = []
        var stack = changedIDs
        while let id = stack.popLast() {
            guard affected.insert(id).inserted else { continue }
            stack += children[id] ?? []
        }
        var byLevel: [[NodeID]] = [[], [], []]
        for id in affected {
            let kind = changedByID[id]?.kind ?? compilation.declared[id]!.kind
            byLevel[kind == .oem ? 0 : kind == .partner ? 1 : 2].append(id)
        }
        for id in affected {
            if let old = previous.declared[id], !removedIDs.contains(id) { forget(id, old, in: &compilation) }
        }
        for id in changedIDs { compilation.declared[id] = changedByID[id]! }
        for level in byLevel {
            // Sorted, so that a run is the same on every node whatever the set's order.
            for id in level.sorted() { compilation.resolve(id) }
        }
        guard compilation.issues.isEmpty, !compilation.dedicatedUsers.values.contains(where: { $0.count > 1 }) else { return nil }

        for id in changedIDs { compilation.declared[id]!.keepOnlyDeclaration() }
        return TenantSnapshot(
            catalog: compilation.catalog, policies: compilation.policies, declared: compilation.declared,
            byPortalDomain: compilation.byPortalDomain, byIssuer: compilation.byIssuer, cells: compilation.cells,
            state: CompiledState(
                catalogSource: state.catalogSource, cellList: state.cellList, resolved: compilation.resolved, children: children,
                dedicatedUsers: compilation.dedicatedUsers.filter { !$0.value.isEmpty }
            )
        )
    }
}
