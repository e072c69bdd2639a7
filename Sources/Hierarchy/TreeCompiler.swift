/// Turns a declared tree into a `TenantSnapshot`: validates all of it, then computes every
/// node's effective policy once. One compiler for every source — the settings file now, the admin
/// store later — so a tree is accepted or rejected by exactly the same rules wherever it came
/// from. Either every node compiles or nothing does: the error lists every issue.
public enum TreeCompiler {
    public static func compile(_ source: TreeSource) throws(TreeValidationError) -> TenantSnapshot {
        var compilation = Compilation(source: source)
        compilation.run()
        guard compilation.issues.isEmpty else {
            throw TreeValidationError(issues: compilation.issues)
        }
        return compilation.snapshot()
    }
}

/// The working state of one compilation. Values are resolved top-down: a node is resolved only
/// after its parent, so every inherited value is read from an already-resolved parent.
struct Compilation {
    let source: TreeSource
    var issues: [TreeIssue] = []
    var catalog = Catalog(features: [], packages: [:], routes: RouteTable([]))
    let cells: [String: CellDescriptor]
    let regions: Set<String>
    /// Pooled cell ids per region, sorted: the candidates for tier-and-region placement.
    let pooledCells: [String: [String]]

    /// Nodes that passed the structural checks, by id, with their declaration.
    var declared = NodeMap<NodeSource>()
    var order: [NodeID] = []
    /// Nodes with a valid, unique id left out of the tree, in document order: their own values
    /// are still checked.
    var detached: [NodeID: NodeSource] = [:]
    var detachedOrder: [NodeID] = []
    var resolved: [NodeID: Resolved] = [:]
    var policies = NodeMap<EffectivePolicy>()
    var byPortalDomain: [String: NodeID] = [:]
    var byIssuer: [String: NodeID] = [:]
    var dedicatedUsers: [String: [NodeID]] = [:]

    /// What a child inherits from a resolved node.
    struct Resolved {
        var path: NodePath
        var suspendedBy: NodeID?
        var allowed: FeatureSet
        /// The OEM's own packages (inherited unchanged below the OEM).
        var oemPackages: [String: FeatureSet]
        /// Per limits field, the nearest value on the path including this node, and who set it.
        var ceilings: LimitCeilings
        var customerDefaults: Limits?
        var placement: (placement: PlacementSource, node: NodeID)?
        var residency: Set<String>?
        var branding: [BrandingField: String]
        var lockedBy: [BrandingField: NodeID]
        /// The compiled branding, handed down unchanged to children that set no branding.
        var effectiveBranding: EffectiveBranding
        var origins: [String]?
        var levels: [LevelLimits]
        var partnerIssuerSelfService: Bool
        var supportAccess: SupportAccessPolicy = .unrestricted
        var masking: ResponseMasks = .none
    }

    /// The nearest value of each limits field on a path, and the node that set it.
    struct LimitCeilings {
        private var values: [(value: Int, node: NodeID)?] = Array(repeating: nil, count: 5)

        subscript(index: Int) -> (value: Int, node: NodeID)? {
            get { self.values[index] }
            set { self.values[index] = newValue }
        }
    }

    init(source: TreeSource) {
        self.source = source
        var cells: [String: CellDescriptor] = [:]
        for cell in source.cells { cells[cell.id] = cell }
        self.cells = cells
        self.regions = Set(source.cells.map(\.region))
        self.pooledCells = Dictionary(grouping: source.cells.filter { $0.kind == .pooled }, by: \.region).mapValues { $0.map(\.id).sorted() }
    }

    mutating func report(_ subject: IssueNode, _ field: String, _ text: IssueText, _ location: SourceLocation, counterpart: IssueNode? = nil) {
        self.issues.append(TreeIssue(subject: subject, field: field, text: text, counterpart: counterpart, location: location))
    }

    mutating func run() {
        self.compileCatalog()
        self.indexNodes()
        for id in self.order { self.resolve(id) }
        for id in self.detachedOrder { self.resolve(id, detached: true) }
        for (cell, users) in self.dedicatedUsers.sorted(by: { $0.key < $1.key }) where users.count > 1 {
            for user in users.dropFirst() {
                let node = self.declared[user] ?? self.detached[user]!
                let names = users.map(self.reference(to:))
                self.report(self.reference(to: user), "placement", "dedicated cell '\(cell)' serves exactly one customer, but is placed for \(nodes: names, separator: ", ")", node.location(of: "placement"))
            }
        }
        self.issues.sort { ($0.location.line ?? Int.max, $0.location.column ?? 0) < ($1.location.line ?? Int.max, $1.location.column ?? 0) }
    }

    func snapshot() -> TenantSnapshot {
        var declared = self.declared
        var children: [NodeID: [NodeID]] = [:]
        for id in self.order {
            declared[id]?.keepOnlyDeclaration()
            if let parent = declared[id]?.parent, let parentID = try? NodeID(parent) { children[parentID, default: []].append(id) }
        }
        let state = CompiledState(
            catalogSource: CompiledState.CatalogKey(self.source.catalog), cellList: self.source.cells, resolved: self.resolved,
            children: children, dedicatedUsers: self.dedicatedUsers
        )
        return TenantSnapshot(
            catalog: self.catalog, policies: self.policies, declared: declared,
            byPortalDomain: self.byPortalDomain, byIssuer: self.byIssuer, cells: self.cells, state: state
        )
    }

    // MARK: - Catalog

    mutating func compileCatalog() {
        let catalog = self.source.catalog
        func location(_ key: String) -> SourceLocation { catalog.locations[key] ?? catalog.locations["features"] ?? .unknown }
        var features: [String] = []
        var seen: Set<String> = []
        for (index, feature) in catalog.features.enumerated() {
            if !ValueRules.isName(feature) {
                self.report(.catalog, "features[\(index)]", "'\(feature)' is not a valid feature name (lowercase letters, digits and '-')", location("features[\(index)]"))
            } else if !seen.insert(feature).inserted {
                self.report(.catalog, "features[\(index)]", "feature '\(feature)' is listed twice", location("features[\(index)]"))
            } else {
                features.append(feature)
            }
        }
        let requirements = self.compileRequirements(catalog, features: Catalog(features: features, packages: [:], routes: RouteTable([])))
        // The packages below are checked against the requirements through `self.catalog`.
        let provisional = Catalog(features: features, packages: [:], routes: RouteTable([]), requirements: requirements)
        self.catalog = provisional
        var packages: [String: FeatureSet] = [:]
        for package in catalog.packages {
            let at = location("packages.\(package.name)")
            if !ValueRules.isName(package.name) {
                self.report(.catalog, "packages.\(package.name)", "'\(package.name)' is not a valid package name", at)
                continue
            }
            if packages[package.name] != nil {
                self.report(.catalog, "packages.\(package.name)", "package '\(package.name)' is defined twice", at)
                continue
            }
            for feature in package.features where provisional.index(of: feature) == nil {
                self.report(.catalog, "packages.\(package.name)", "unknown feature '\(feature)'", at)
            }
            packages[package.name] = provisional.set(package.features)
            self.checkPackageRequirements(packages[package.name]!, subject: .catalog, field: "packages.\(package.name)", location: at)
        }
        var routes: [Route] = []
        var routeKeys: Set<String> = []
        var maskingRules: [Int: [MaskingRule]] = [:]
        for (index, route) in catalog.routes.enumerated() {
            let at = location("routes[\(index)]")
            let field = "routes[\(index)]"
            var valid = true
            if !route.pathPrefix.hasPrefix("/") || route.pathPrefix.contains("?") || route.pathPrefix.contains("#")
                || route.pathPrefix.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7f })
            {
                self.report(.catalog, field, "path '\(route.pathPrefix)' must start with '/' and contain no spaces, query or fragment", at)
                valid = false
            }
            let method = route.method?.uppercased()
            if let method, method.isEmpty || !method.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
                self.report(.catalog, field, "method '\(route.method ?? "")' is not an HTTP method", at)
                valid = false
            }
            var featureIndex: Int?
            if let feature = route.feature {
                featureIndex = provisional.index(of: feature)
                if featureIndex == nil {
                    self.report(.catalog, field, "unknown feature '\(feature)'", at)
                    valid = false
                }
            }
            if !(1...1000).contains(route.cost) {
                self.report(.catalog, field, "cost must be between 1 and 1000, got \(route.cost)", at)
                valid = false
            }
            var exposed: [String] = []
            for name in route.exposeHeaders {
                if let problem = ExposedHeaders.problem(with: name, listedBefore: exposed) {
                    self.report(.catalog, field, "exposeHeaders: \(problem)", at)
                    valid = false
                } else {
                    exposed.append(name)
                }
            }
            let key = "\(method ?? "*") \(route.pathPrefix)"
            if !routeKeys.insert(key).inserted {
                self.report(.catalog, field, "route '\(key)' is defined twice", at)
                valid = false
            }
            if route.websocket, let method, method != "GET" {
                self.report(.catalog, field, "a WebSocket route opens with GET, not \(method)", at)
                valid = false
            }
            var rules: [MaskingRule] = []
            for (ruleIndex, source) in route.masking.enumerated() {
                let (rule, problems) = MaskingRule.compile(source)
                for problem in problems { self.report(.catalog, "\(field).masking[\(ruleIndex)]", "\(problem)", at) }
                if let rule { rules.append(rule) } else { valid = false }
            }
            if route.websocket, !route.masking.isEmpty {
                self.report(.catalog, "\(field).masking", "a WebSocket route's messages cannot be masked", at)
                valid = false
            }
            if valid {
                if !rules.isEmpty { maskingRules[routes.count] = rules }
                routes.append(Route(
                    method: method, pathPrefix: route.pathPrefix, feature: route.feature, featureIndex: featureIndex, cost: route.cost,
                    exposedHeaders: ExposedHeaders.value(exposed),
                    websocket: route.websocket, index: routes.count
                ))
            }
        }
        var masks = ResponseMasks.none
        do {
            masks = try masks.adding(maskingRules)
        } catch {
            self.report(.catalog, "routes", "masking: \(error)", location("routes"))
        }
        self.catalog = Catalog(features: features, packages: packages, routes: RouteTable(routes), requirements: requirements, masks: masks)
    }

    // MARK: - Structure: ids, parents, kinds, cycles

    mutating func indexNodes() {
        var byID: [NodeID: NodeSource] = [:]
        var documentOrder: [NodeID] = []
        // Ids already reported as invalid or duplicated: their children are left out quietly,
        // since which node they hang under is unknown — one report per mistake.
        var rejectedIDs: Set<String> = []
        for node in self.source.nodes {
            let id: NodeID
            do {
                id = try NodeID(node.id)
            } catch {
                self.report(.id(node.id), "id", "invalid id: \(error)", node.location(of: "id"))
                rejectedIDs.insert(node.id)
                continue
            }
            if byID[id] != nil {
                self.report(.id(node.id), "id", "id '\(node.id)' is used by another node; ids are unique in the whole tree", node.location(of: "id"))
                rejectedIDs.insert(node.id)
                continue
            }
            byID[id] = node
            documentOrder.append(id)
        }

        // Parents and kinds. A node with a structural problem is left out of the tree together
        // with its subtree; its own problem is reported once, and its values are checked detached.
        var parentOf: [NodeID: NodeID] = [:]
        var broken: Set<NodeID> = []
        for id in documentOrder {
            let node = byID[id]!
            guard let parentText = node.parent else {
                if node.kind != .oem {
                    self.report(.id(node.id), "parent", "a \(node.kind.rawValue) needs a parent (\(node.kind == .partner ? "an OEM" : "a partner"))", node.location(of: "kind"))
                    broken.insert(id)
                }
                continue
            }
            if node.kind == .oem {
                self.report(.id(node.id), "parent", "an OEM is a root of the tree and has no parent", node.location(of: "parent"))
                broken.insert(id)
                continue
            }
            if rejectedIDs.contains(parentText) {
                broken.insert(id)
                continue
            }
            guard let parentID = try? NodeID(parentText), byID[parentID] != nil else {
                self.report(.id(node.id), "parent", "unknown parent '\(parentText)'", node.location(of: "parent"))
                broken.insert(id)
                continue
            }
            parentOf[id] = parentID
        }

        // Cycles: follow parents; a walk that comes back to a node it has seen is a cycle.
        var inCycle: Set<NodeID> = []
        for start in documentOrder where parentOf[start] != nil && !inCycle.contains(start) {
            var walk: [NodeID] = [start]
            var seen: Set<NodeID> = [start]
            var current = start
            while let parent = parentOf[current] {
                if seen.contains(parent) {
                    let cycle = walk[walk.firstIndex(of: parent)!...]
                    if cycle.contains(where: inCycle.contains) { break }
                    inCycle.formUnion(cycle)
                    let first = cycle.min { documentOrder.firstIndex(of: $0)! < documentOrder.firstIndex(of: $1)! }!
                    let names = (Array(cycle) + [cycle.first!]).map { IssueNode.id($0.rawValue) }
                    self.report(.id(first.rawValue), "parent", "parents form a cycle: \(nodes: names, separator: " → ")", byID[first]!.location(of: "parent"))
                    break
                }
                seen.insert(parent)
                walk.append(parent)
                current = parent
            }
        }
        broken.formUnion(inCycle)

        for id in documentOrder where !broken.contains(id) {
            let node = byID[id]!
            guard let parentID = parentOf[id], let parent = byID[parentID] else { continue }
            let expected: NodeKind = node.kind == .customer ? .partner : .oem
            if parent.kind != expected {
                self.report(.id(node.id), "parent", "the parent of a \(node.kind.rawValue) must be a\(expected == .oem ? "n OEM" : " partner"), but '\(node: .id(parent.id))' is a\(parent.kind == .oem ? "n OEM" : " \(parent.kind.rawValue)")", node.location(of: "parent"))
                broken.insert(id)
            }
        }

        // Top-down order: OEMs, then partners, then customers, each in document order. A node
        // under a broken ancestor is skipped.
        func hasBrokenAncestor(_ id: NodeID) -> Bool {
            var current = id
            var steps = 0
            while let parent = parentOf[current], steps < 4 {
                if broken.contains(parent) { return true }
                current = parent
                steps += 1
            }
            return false
        }
        for kind in [NodeKind.oem, .partner, .customer] {
            for id in documentOrder where byID[id]!.kind == kind && !broken.contains(id) && !hasBrokenAncestor(id) {
                self.order.append(id)
                self.declared[id] = byID[id]!
            }
        }
        for id in documentOrder where self.declared[id] == nil {
            self.detachedOrder.append(id)
            self.detached[id] = byID[id]!
        }
    }

    /// A node an issue refers to: by path once it is resolved, else by id.
    func reference(to id: NodeID) -> IssueNode {
        self.policies[id].map { .path($0.path) } ?? .id(id.rawValue)
    }

    // MARK: - Inheritance

    /// Resolves a placed node, or checks a detached one: a node left out of the tree (its parent
    /// unknown, of the wrong kind or in a cycle, or an ancestor so) has no path and inherits
    /// nothing, but its own values are checked all the same, so one run lists every mistake.
    /// Only what needs an ancestor is left unsaid about it (a package of its OEM's, an inherited
    /// placement); nothing of it is kept.
    mutating func resolve(_ id: NodeID, detached: Bool = false) {
        let node = detached ? self.detached[id]! : self.declared[id]!
        let parentID = node.parent.flatMap { try? NodeID($0) }
        let parent = detached ? nil : parentID.flatMap { self.resolved[$0] }
        let path: NodePath
        if let parent {
            path = parent.path.appending(id)!
        } else {
            path = NodePath(oem: id)
        }
        let subject: IssueNode = detached ? .id(node.id) : .path(path)
        func at(_ field: String) -> SourceLocation { node.location(of: field) }

        // Status: suspending a node suspends its whole subtree.
        let suspendedBy = parent?.suspendedBy ?? (node.status == .suspended ? id : nil)

        // Features: a node may only narrow what its parent may offer.
        let parentAllowed = parent?.allowed ?? self.catalog.all
        var allowed = parentAllowed
        if let features = node.features {
            if node.kind == .customer {
                self.report(subject, "features", "a customer's features come from its package and add-ons", at("features"))
            } else {
                var unknown: [String] = []
                for feature in features where self.catalog.index(of: feature) == nil { unknown.append(feature) }
                if !unknown.isEmpty {
                    self.report(subject, "features", "unknown feature\(unknown.count == 1 ? "" : "s") \(Self.quoted(unknown))", at("features"))
                }
                let own = self.catalog.set(features)
                let widened = own.subtracting(parentAllowed)
                if !widened.isEmpty {
                    self.report(subject, "features", "may only narrow its parent's features; not allowed above: \(Self.quoted(self.catalog.names(widened)))", at("features"))
                }
                allowed = own.intersection(parentAllowed)
                self.checkOfferedRequirements(allowed, own: own, subject: subject, location: at("features"))
            }
        }

        // Packages: OEMs may define their own, within what they may offer.
        var oemPackages = parent?.oemPackages ?? [:]
        if !node.packages.isEmpty {
            if node.kind != .oem {
                self.report(subject, "packages", "only an OEM defines packages", at("packages"))
            } else {
                for package in node.packages {
                    let field = "packages.\(package.name)"
                    if !ValueRules.isName(package.name) {
                        self.report(subject, field, "'\(package.name)' is not a valid package name", at(field))
                        continue
                    }
                    if self.catalog.packages[package.name] != nil || oemPackages[package.name] != nil {
                        self.report(subject, field, "package '\(package.name)' is already defined", at(field))
                        continue
                    }
                    let unknown = package.features.filter { self.catalog.index(of: $0) == nil }
                    if !unknown.isEmpty {
                        self.report(subject, field, "unknown feature\(unknown.count == 1 ? "" : "s") \(Self.quoted(unknown))", at(field))
                    }
                    let set = self.catalog.set(package.features)
                    let beyond = set.subtracting(allowed)
                    if !beyond.isEmpty {
                        self.report(subject, field, "a package must be a subset of what the OEM may sell; not allowed: \(Self.quoted(self.catalog.names(beyond)))", at(field))
                    }
                    oemPackages[package.name] = set
                    self.checkPackageRequirements(set, subject: subject, field: field, location: at(field))
                }
            }
        }

        // A customer's features: its package and add-ons, narrowed by every ancestor.
        var features = allowed
        if node.kind == .customer {
            var subscribed = FeatureSet()
            if let package = node.package {
                if let set = oemPackages[package] ?? self.catalog.packages[package] {
                    subscribed = set
                } else if !detached {
                    self.report(subject, "package", "unknown package '\(package)'", at("package"))
                }
            } else {
                self.report(subject, "package", "a customer subscribes to a package", at("kind"))
            }
            let unknownAddOns = node.addOns.filter { self.catalog.index(of: $0) == nil }
            if !unknownAddOns.isEmpty {
                self.report(subject, "addOns", "unknown feature\(unknownAddOns.count == 1 ? "" : "s") \(Self.quoted(unknownAddOns))", at("addOns"))
            }
            let addOns = self.catalog.set(node.addOns)
            features = subscribed.union(addOns).intersection(allowed)
            self.checkCustomerRequirements(
                effective: features, subscribed: subscribed, addOns: addOns, package: node.package, path: path, subject: subject, location: at
            )
        } else {
            if node.package != nil { self.report(subject, "package", "only a customer subscribes to a package", at("package")) }
            if !node.addOns.isEmpty { self.report(subject, "addOns", "only a customer has add-ons", at("addOns")) }
        }

        // Limits: each node's limits budget its whole subtree; none may exceed an ancestor's.
        var ceilings = parent?.ceilings ?? LimitCeilings()
        var levels = parent?.levels ?? []
        // An empty `limits: {}` sets nothing, exactly like leaving it out.
        var ownLimits = node.limits.flatMap { $0.isEmpty ? nil : $0 }
        if ownLimits == nil, node.kind == .customer, let defaults = parent?.customerDefaults {
            ownLimits = defaults
        }
        if let limits = node.limits {
            self.checkLimits(limits, field: "limits", subject: subject, location: at, ceilings: ceilings, selfID: id)
        }
        if let limits = ownLimits, !limits.isEmpty {
            for (index, field) in limits.fields.enumerated() { if let value = field.value { ceilings[index] = (value, id) } }
            // An unset burst means "as the rate": that is the ceiling for bursts below.
            if limits.burst == nil, let rate = limits.ratePerSecond { ceilings[Limits.burstIndex] = (rate, id) }
            levels.insert(LevelLimits(node: id, kind: node.kind, limits: limits), at: 0)
        }
        var customerDefaults = parent?.customerDefaults
        if let defaults = node.customerDefaults {
            if node.kind == .customer {
                self.report(subject, "customerDefaults", "customer defaults belong on an OEM or partner", at("customerDefaults"))
            } else {
                self.checkLimits(defaults, field: "customerDefaults", subject: subject, location: at, ceilings: ceilings, selfID: id)
                customerDefaults = defaults
            }
        } else if let inherited = customerDefaults, node.kind != .customer, node.limits != nil {
            // Defaults set higher up must still fit inside this node's own, narrower budget.
            let before = self.issues.count
            self.checkLimits(inherited, field: "customerDefaults", subject: subject, location: at, ceilings: ceilings, selfID: id)
            for index in before..<self.issues.count {
                self.issues[index].text.append(" (inherited customer defaults: set customerDefaults on this node)")
            }
        }

        // Residency: a child may only narrow.
        var residency = parent?.residency
        if let regions = node.residency {
            let unknown = regions.filter { !self.regions.contains($0) }
            if !unknown.isEmpty {
                self.report(subject, "residency", "no cell is in region\(unknown.count == 1 ? "" : "s") \(Self.quoted(unknown))", at("residency"))
            }
            let own = Set(regions)
            if let inherited = residency, !own.isSubset(of: inherited) {
                self.report(subject, "residency", "may only narrow its parent's regions \(Self.quoted(inherited.sorted())); not allowed: \(Self.quoted(own.subtracting(inherited).sorted()))", at("residency"))
            }
            residency = residency.map { own.intersection($0) } ?? own
        }

        // Placement: nearest setting wins; the cell must exist and lie inside the residency.
        var placement = parent?.placement
        if let own = node.placement {
            placement = (own, id)
            self.checkPlacement(own, subject: subject, location: at("placement"), residency: residency)
        }
        var cell: String?
        if node.kind == .customer, !detached || node.placement != nil {
            cell = self.customerCell(id: id, subject: subject, placement: placement, residency: residency, location: at("placement"))
        }

        // Branding: field by field, nearest wins, except fields an ancestor locked.
        var branding = parent?.branding ?? [:]
        var lockedBy = parent?.lockedBy ?? [:]
        if let own = node.branding {
            for (field, value) in own.values.sorted(by: { $0.key < $1.key }) {
                let fieldName = "branding.\(field.rawValue)"
                if let locker = lockedBy[field] {
                    self.report(subject, fieldName, "is locked by \(node: self.reference(to: locker)) and cannot be changed below it", at(fieldName))
                    continue
                }
                if let problem = ValueRules.brandingProblem(field, value) {
                    self.report(subject, fieldName, "\(problem)", at(fieldName))
                    continue
                }
                branding[field] = value
            }
            for field in own.locked where lockedBy[field] == nil {
                lockedBy[field] = id
            }
        }

        // Portal domains: unique across the whole tree.
        for domain in node.portalDomains {
            if let problem = ValueRules.portalDomainProblem(domain) {
                self.report(subject, "portalDomains", "\(problem)", at("portalDomains"))
            } else if let owner = self.byPortalDomain[domain] {
                let holder = self.reference(to: owner)
                self.report(subject, "portalDomains", "'\(domain)' is already the portal domain of \(node: holder)", at("portalDomains"), counterpart: holder)
            } else {
                self.byPortalDomain[domain] = id
            }
        }

        // Origins: a child may only narrow; none at the top means none anywhere below.
        var origins = parent?.origins
        if let own = node.origins {
            for origin in own {
                if let problem = ValueRules.originProblem(origin) { self.report(subject, "origins", "\(problem)", at("origins")) }
            }
            let inherited = Set(origins ?? [])
            let widened = own.filter { !inherited.contains($0) }
            if parent != nil, !widened.isEmpty {
                self.report(subject, "origins", "may only narrow its parent's origins; not allowed: \(Self.quoted(widened))", at("origins"))
            }
            origins = own.filter { parent == nil || inherited.contains($0) }
        }

        // Issuers: registered on the platform side of a subtree, each on exactly one node.
        for issuer in node.issuers {
            if node.kind == .customer {
                self.report(subject, "issuers", "issuers are registered on an OEM or a partner", at("issuers"))
                break
            }
            if issuer.isEmpty || issuer.utf8.count > 512 || issuer.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) {
                self.report(subject, "issuers", "'\(issuer)' is not a valid issuer (1 to 512 visible characters)", at("issuers"))
            } else if let owner = self.byIssuer[issuer] {
                let holder = self.reference(to: owner)
                self.report(subject, "issuers", "issuer '\(issuer)' is already registered on \(node: holder)", at("issuers"), counterpart: holder)
            } else {
                self.byIssuer[issuer] = id
            }
        }

        // Partner issuer self-service: the OEM's own policy about its partners, decided once for
        // its whole subtree.
        if node.kind != .oem, node.partnerIssuerSelfService != nil {
            self.report(subject, "partnerIssuerSelfService", "only an OEM decides whether its partners manage their own token issuers", at("partnerIssuerSelfService"))
        }
        let partnerIssuerSelfService = parent?.partnerIssuerSelfService ?? (node.partnerIssuerSelfService ?? false)

        // Support access: a cap and the approvers, set on an OEM or a partner, only narrowing.
        let inheritedSupport = parent?.supportAccess ?? .unrestricted
        if let own = node.supportAccess {
            if node.kind == .customer {
                self.report(subject, "supportAccess", "support access is set on an OEM or a partner, for the customers below it", at("supportAccess"))
            }
            if let duration = own.maxDuration, let cap = inheritedSupport.maxDuration, duration > cap {
                self.report(subject, "supportAccess.maxDuration", "may only shorten its parent's cap of \(cap) s", at("supportAccess.maxDuration"))
            }
            if let approvers = own.approvers {
                let widened = approvers.filter { !inheritedSupport.approvers.contains($0) }
                if !widened.isEmpty {
                    self.report(subject, "supportAccess.approvers", "may only narrow its parent's approvers; not allowed: \(Self.quoted(widened.map(\.rawValue)))", at("supportAccess.approvers"))
                } else if approvers.isEmpty {
                    self.report(subject, "supportAccess.approvers", "name at least one of customer, partner, oem", at("supportAccess.approvers"))
                }
            }
        }
        let supportAccess = inheritedSupport.narrowed(by: node.kind == .customer ? nil : node.supportAccess, node: id)
        // Masking: the parent's masks plus the node's own rules; nothing below can unmask.
        let masking = self.masking(of: node, subject: subject, inherited: parent?.masking ?? self.catalog.masks, location: at("masking"))

        // Most nodes set no branding of their own: they share their parent's compiled value.
        let effectiveBranding: EffectiveBranding
        if let inherited = parent?.effectiveBranding, inherited.values == branding {
            effectiveBranding = inherited
        } else {
            effectiveBranding = EffectiveBranding(values: branding)
        }
        if detached { return }
        if node.kind != .customer {
            // Customers have no children: nothing needs their inheritable state.
            self.resolved[id] = Resolved(
                path: path, suspendedBy: suspendedBy, allowed: allowed, oemPackages: oemPackages, ceilings: ceilings,
                customerDefaults: customerDefaults, placement: placement, residency: residency, branding: branding,
                lockedBy: lockedBy, effectiveBranding: effectiveBranding, origins: origins, levels: levels,
                partnerIssuerSelfService: partnerIssuerSelfService, supportAccess: supportAccess, masking: masking
            )
        }
        self.policies[id] = EffectivePolicy(
            id: id, path: path, status: suspendedBy == nil ? .active : .suspended, suspendedBy: suspendedBy,
            features: features, package: node.package, addOns: node.addOns, limits: levels, cell: cell,
            residency: residency, branding: effectiveBranding, portalDomains: node.portalDomains,
            origins: origins ?? [], partnerIssuerSelfService: partnerIssuerSelfService, supportAccess: supportAccess, masking: masking
        )
    }

    /// A node's masks: `inherited` with its own rules added, each checked and its route found.
    mutating func masking(of node: NodeSource, subject: IssueNode, inherited: ResponseMasks, location: SourceLocation) -> ResponseMasks {
        guard !node.masking.isEmpty else { return inherited }
        var own: [Int: [MaskingRule]] = [:]
        for (index, source) in node.masking.enumerated() {
            let field = "masking[\(index)]"
            let (rule, problems) = MaskingRule.compile(source)
            for problem in problems { self.report(subject, field, "\(problem)", location) }
            guard let reference = source.route, !reference.isEmpty else {
                self.report(subject, "\(field).route", "a node's rule names the catalog route it masks", location)
                continue
            }
            let routes = self.catalog.routeIndices(named: reference)
            if routes.isEmpty {
                self.report(subject, "\(field).route", "no catalog route '\(reference)'", location)
                continue
            }
            if routes.contains(where: { index in self.catalog.routes.all.contains { $0.index == index && $0.websocket } }) {
                self.report(subject, "\(field).route", "'\(reference)' is a WebSocket route, whose messages cannot be masked", location)
                continue
            }
            guard let rule else { continue }
            for route in routes { own[route, default: []].append(rule) }
        }
        do {
            return try inherited.adding(own)
        } catch {
            self.report(subject, "masking", "\(error)", location)
            return inherited
        }
    }

    mutating func checkLimits(
        _ limits: Limits, field: String, subject: IssueNode, location: (String) -> SourceLocation, ceilings: LimitCeilings, selfID: NodeID
    ) {
        if limits.burst != nil, limits.ratePerSecond == nil {
            self.report(subject, "\(field).burst", "a burst needs a rate", location("\(field).burst"))
        }
        // Quota arithmetic is in whole microseconds: at most one request per microsecond.
        if let rate = limits.ratePerSecond, rate > Limits.maxRatePerSecond {
            self.report(subject, "\(field).rate", "at most \(Limits.maxRatePerSecond) per second", location("\(field).rate"))
        }
        for (index, (name, value)) in limits.fields.enumerated() {
            guard let value else { continue }
            if value < 1 {
                self.report(subject, "\(field).\(name)", "must be at least 1", location("\(field).\(name)"))
            } else if let ceiling = ceilings[index], value > ceiling.value {
                let owner = ceiling.node == selfID ? subject : self.reference(to: ceiling.node)
                self.report(subject, "\(field).\(name)", "\(value) is above the \(ceiling.value) of \(node: owner)", location("\(field).\(name)"))
            }
        }
    }

    mutating func checkPlacement(_ placement: PlacementSource, subject: IssueNode, location: SourceLocation, residency: Set<String>?) {
        if let cellID = placement.cell {
            guard let cell = self.cells[cellID] else {
                self.report(subject, "placement.cell", "unknown cell '\(cellID)'", location)
                return
            }
            if placement.tier != nil || placement.region != nil {
                self.report(subject, "placement", "pin a cell or name a tier and region, not both", location)
            }
            if let residency, !residency.contains(cell.region) {
                self.report(subject, "placement.cell", "cell '\(cellID)' is in region '\(cell.region)', outside the allowed regions \(Self.quoted(residency.sorted()))", location)
            }
            return
        }
        guard let region = placement.region, placement.tier != nil else {
            self.report(subject, "placement", "needs either a cell, or a tier and a region", location)
            return
        }
        if !self.regions.contains(region) {
            self.report(subject, "placement.region", "no cell is in region '\(region)'", location)
        } else if let residency, !residency.contains(region) {
            self.report(subject, "placement.region", "region '\(region)' is outside the allowed regions \(Self.quoted(residency.sorted()))", location)
        }
    }

    /// The cell a customer is served by, from its nearest placement.
    mutating func customerCell(
        id: NodeID, subject: IssueNode, placement: (placement: PlacementSource, node: NodeID)?, residency: Set<String>?, location: SourceLocation
    ) -> String? {
        guard let (placement, setter) = placement else {
            self.report(subject, "placement", "no placement: set a cell, or a tier and region, on the customer or an ancestor", location)
            return nil
        }
        let inherited = setter != id
        if let cellID = placement.cell {
            guard let cell = self.cells[cellID] else { return nil }  // reported where it was set
            if inherited, let residency, !residency.contains(cell.region) {
                self.report(subject, "placement", "inherits cell '\(cellID)' from \(node: self.reference(to: setter)), which is outside this customer's regions \(Self.quoted(residency.sorted()))", location)
                return nil
            }
            if cell.kind == .dedicated {
                self.dedicatedUsers[cellID, default: []].append(id)
            }
            return cellID
        }
        guard let tier = placement.tier, let region = placement.region else { return nil }
        if tier == .dedicated {
            self.report(subject, "placement", "the dedicated tier needs a pinned cell (a dedicated cell serves one customer)", location)
            return nil
        }
        if inherited, let residency, !residency.contains(region) {
            self.report(subject, "placement", "inherits region '\(region)' from \(node: self.reference(to: setter)), which is outside this customer's regions \(Self.quoted(residency.sorted()))", location)
            return nil
        }
        guard let candidates = self.pooledCells[region], !candidates.isEmpty else {
            // A region with no cell at all was reported where the placement was set.
            if self.regions.contains(region) {
                self.report(subject, "placement", "no pooled cell in region '\(region)'", location)
            }
            return nil
        }
        // Spread customers over a region's pooled cells by a stable hash of their id, so every
        // gateway node and every recompile places a customer in the same cell.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.rawValue.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return candidates[Int(hash % UInt64(candidates.count))]
    }

    static func quoted(_ names: [String]) -> String {
        names.map { "'\($0)'" }.joined(separator: ", ")
    }
}
