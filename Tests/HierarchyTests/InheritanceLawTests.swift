import PropertyBased
import Testing
@testable import Hierarchy

/// Laws of inheritance checked on random valid trees: 1–3 OEMs, 1–3 partners each, 1–4
/// customers each, with features, packages, limits, residency, placement, branding locks,
/// origins and status drawn at random but always within what the parent allows.
@Suite struct InheritanceLawTests {
    @Test func featuresOnlyNarrowDownThePath() async {
        await propertyCheck(count: 150, input: RandomTrees.valid) { tree in
            let snapshot = try TreeCompiler.compile(tree.source)
            for id in snapshot.nodeIDs {
                let policy = try #require(snapshot.policy(id))
                for ancestor in policy.path.ids.dropLast() {
                    let above = try #require(snapshot.policy(ancestor))
                    #expect(policy.features.isSubset(of: above.features), "\(policy.path) has features \(above.path) does not")
                }
            }
        }
    }

    @Test func changingOnePartnerChangesNothingOutsideItsSubtree() async {
        await propertyCheck(count: 150, input: RandomTrees.partnerEdits) { edit in
            let before = try TreeCompiler.compile(edit.tree.source)
            let after = try TreeCompiler.compile(edit.edited)

            #expect(before.nodeIDs == after.nodeIDs)
            for id in before.nodeIDs {
                let old = try #require(before.policy(id))
                guard old.path.partner?.rawValue != edit.partner else { continue }
                #expect(old.digest == after.policy(id)?.digest, "\(old.path) changed when \(edit.partner) was edited")
            }
        }
    }

    @Test func aLockedFieldHasTheLockingNodesValueEverywhereBelow() async {
        await propertyCheck(count: 150, input: RandomTrees.valid) { tree in
            let snapshot = try TreeCompiler.compile(tree.source)
            for oem in tree.source.nodes where oem.kind == .oem {
                let locking = try #require(snapshot.policy(of: oem.id))
                for field in oem.branding?.locked ?? [] {
                    for id in snapshot.nodeIDs {
                        let policy = try #require(snapshot.policy(id))
                        guard policy.path.oem == locking.id else { continue }
                        #expect(policy.branding.values[field] == locking.branding.values[field], "\(policy.path) \(field)")
                    }
                }
            }
        }
    }

    @Test func overridingALockedFieldBelowTheLockIsAlwaysReported() async {
        await propertyCheck(count: 150, input: RandomTrees.valid, Gen.int(in: 0...10_000)) { tree, choice in
            let snapshot = try TreeCompiler.compile(tree.source)
            let locks = tree.source.nodes.filter { $0.kind == .oem }.flatMap { oem in (oem.branding?.locked ?? []).map { (oem: oem.id, field: $0) } }
            guard !locks.isEmpty else { return }
            let lock = locks[choice % locks.count]
            let below = snapshot.nodeIDs.compactMap { snapshot.policy($0) }.filter { $0.path.oem.rawValue == lock.oem && $0.kind != .oem }
            let target = below[choice % below.count]

            var source = tree.source
            let index = try #require(source.nodes.firstIndex { $0.id == target.id.rawValue })
            var branding = source.nodes[index].branding ?? BrandingSource()
            branding.values[lock.field] = RandomTrees.brandingValue(lock.field, owner: "override", number: choice)
            source.nodes[index].branding = branding

            let error = #expect(throws: TreeValidationError.self, "\(target.path) overrides \(lock.field), locked by \(lock.oem)") {
                try TreeCompiler.compile(source)
            }
            #expect(error?.issues.contains { $0.node == target.path.description && $0.field == "branding.\(lock.field.rawValue)" } == true)
        }
    }

    @Test func compilingTheSameTreeTwiceGivesTheSamePolicies() async {
        await propertyCheck(count: 150, input: RandomTrees.valid) { tree in
            let first = try TreeCompiler.compile(tree.source)
            let second = try TreeCompiler.compile(tree.source)

            #expect(first.nodeIDs == second.nodeIDs)
            #expect(first.nodeCount == tree.source.nodes.count)
            for id in first.nodeIDs {
                #expect(first.policy(id)?.digest == second.policy(id)?.digest)
            }
        }
    }
}

/// A random valid tree, and what a valid edit of each partner must respect.
struct RandomTree: Sendable {
    struct Partner: Sendable {
        var id: String
        /// What its OEM allows: a partner's features must stay within them.
        var oemAllowed: [String]
        /// Branding fields its OEM locked: a partner may not set them.
        var locked: Set<BrandingField>
    }

    var source: TreeSource
    var partners: [Partner]
}

/// A random valid tree and the same tree with one partner's declaration changed, still valid.
struct PartnerEdit: Sendable {
    var tree: RandomTree
    var partner: String
    var edited: TreeSource
}

enum RandomTrees {
    static let valid = Generator<RandomTree, Shrink.None<RandomTree>> { rng in
        var builder = RandomTreeBuilder(using: &rng)
        return builder.build()
    }

    static let partnerEdits = Generator<PartnerEdit, Shrink.None<PartnerEdit>> { rng in
        var builder = RandomTreeBuilder(using: &rng)
        let tree = builder.build()
        let partner = builder.element(of: tree.partners)
        return PartnerEdit(tree: tree, partner: partner.id, edited: builder.edit(partner, in: tree.source))
    }

    /// A valid value for a branding field, distinct for each owner and number.
    static func brandingValue(_ field: BrandingField, owner: String, number: Int) -> String {
        switch field {
        case .displayName: return "Brand \(owner) \(number)"
        case .logoUrl, .faviconUrl, .supportUrl, .termsUrl, .privacyUrl: return "https://\(owner).example/\(field.rawValue)/\(number)"
        case .primaryColor, .accentColor:
            let hex = String(number % 0x1000000, radix: 16)
            return "#" + String(repeating: "0", count: 6 - hex.count) + hex
        case .supportEmail: return "help\(number)@\(owner).example"
        }
    }
}

/// Draws a tree top-down, keeping for each node what its children inherit, so that every
/// declaration stays within its parent's.
struct RandomTreeBuilder {
    private var rng: Xoshiro
    private var nodes: [NodeSource] = []
    private var partners: [RandomTree.Partner] = []
    private var usedDedicatedCells: Set<String> = []

    private static var pooledRegions: [String] { ["eu", "us"] }

    /// What a node passes on to its children.
    private struct Inherited {
        var allowed = Fixtures.features
        var packages = Fixtures.packages.map(\.name)
        /// Per `Limits.fields` name, the nearest value set above.
        var ceilings: [String: Int] = [:]
        var residency: [String]?
        /// The region of the placement in effect; nil above the first placement.
        var placementRegion: String?
        var locked: Set<BrandingField> = []
        var origins: [String]?
    }

    /// Seeded from `source`, which advances as a generator's input should.
    init(using source: inout some RandomNumberGenerator) {
        self.rng = Xoshiro(seed: (source.next(), source.next(), source.next(), source.next()))
    }

    mutating func build() -> RandomTree {
        for oem in 0..<self.int(1...3) {
            let id = "oem-\(oem)"
            var node = NodeSource(id: id, kind: .oem)
            var inherited = Inherited()
            if self.chance(0.7) {
                node.features = self.subset(Fixtures.features)
                inherited.allowed = node.features!
            }
            if self.chance(0.5) {
                node.packages = [PackageSource(name: "pack-\(oem)", features: self.subset(inherited.allowed))]
                inherited.packages.append("pack-\(oem)")
            }
            let values = self.brandingValues(of: BrandingField.allCases, owner: id, rate: 0.5)
            let locked = self.subset(BrandingField.allCases)
            node.branding = BrandingSource(values: values, locked: locked)
            inherited.locked = Set(locked)
            if self.chance(0.6) {
                node.origins = self.subset(["https://app.\(id).example", "https://admin.\(id).example", "http://localhost:3000"])
                inherited.origins = node.origins
            }
            if self.chance(0.5) { node.issuers = ["https://id.\(id).example"] }
            self.declareCommon(&node, &inherited)

            for partner in 0..<self.int(1...3) {
                let partnerID = "partner-\(oem)-\(partner)"
                var partnerNode = NodeSource(id: partnerID, kind: .partner, parent: id)
                var below = inherited
                if self.chance(0.6) {
                    partnerNode.features = self.subset(inherited.allowed)
                    below.allowed = partnerNode.features!
                }
                if self.chance(0.3) { partnerNode.issuers = ["https://id.\(partnerID).example"] }
                self.declareCommon(&partnerNode, &below)
                self.partners.append(RandomTree.Partner(id: partnerID, oemAllowed: inherited.allowed, locked: inherited.locked))

                for customer in 0..<self.int(1...4) {
                    var customerNode = NodeSource(id: "customer-\(oem)-\(partner)-\(customer)", kind: .customer, parent: partnerID)
                    var own = below
                    customerNode.package = below.packages[self.int(0...(below.packages.count - 1))]
                    customerNode.addOns = self.subset(Fixtures.features, rate: 0.2)
                    self.declareCommon(&customerNode, &own)
                }
            }
        }
        return RandomTree(source: Fixtures.tree(self.nodes), partners: self.partners)
    }

    /// Limits, residency, placement, unlocked branding, origins, status and a portal domain:
    /// each maybe declared, each within what `inherited` allows. Appends the node.
    private mutating func declareCommon(_ node: inout NodeSource, _ inherited: inout Inherited) {
        if self.chance(0.6) {
            let limits = self.limits(below: inherited.ceilings)
            node.limits = limits
            for (name, value) in limits.fields { if let value { inherited.ceilings[name] = value } }
        }
        if node.kind != .customer, self.chance(0.4) {
            node.customerDefaults = self.limits(below: inherited.ceilings)
        }

        if self.chance(node.kind == .oem ? 0.5 : 0.25) {
            var regions = self.subset(inherited.residency ?? Self.pooledRegions)
            if regions.isEmpty { regions = [self.element(of: inherited.residency ?? Self.pooledRegions)] }
            node.residency = regions
            inherited.residency = regions
        }
        let regions = inherited.residency ?? Self.pooledRegions
        let mustPlace = node.kind == .oem || !regions.contains(inherited.placementRegion ?? "")
        if mustPlace || self.chance(0.2) {
            let region = self.element(of: regions)
            let dedicated = Fixtures.cells.first { $0.kind == .dedicated && $0.region == region && !self.usedDedicatedCells.contains($0.id) }
            if node.kind == .customer, let dedicated, self.chance(0.3) {
                node.placement = PlacementSource(cell: dedicated.id)
                self.usedDedicatedCells.insert(dedicated.id)
            } else if self.chance(0.3) {
                node.placement = PlacementSource(cell: self.element(of: Fixtures.cells.filter { $0.kind == .pooled && $0.region == region }).id)
            } else {
                node.placement = PlacementSource(tier: .pooled, region: region)
            }
            inherited.placementRegion = region
        }

        if node.kind != .oem {
            let fields = BrandingField.allCases.filter { !inherited.locked.contains($0) }
            let values = self.brandingValues(of: fields, owner: node.id, rate: 0.3)
            if !values.isEmpty { node.branding = BrandingSource(values: values) }
            if let origins = inherited.origins, self.chance(0.3) {
                node.origins = self.subset(origins)
                inherited.origins = node.origins
            }
        }
        if self.chance(0.1) { node.status = .suspended }
        if self.chance(0.3) { node.portalDomains = ["\(node.id).portal.example"] }
        self.nodes.append(node)
    }

    /// `source` with the partner's allowed features, branding and status replaced by other
    /// values drawn within what its OEM allows.
    mutating func edit(_ partner: RandomTree.Partner, in source: TreeSource) -> TreeSource {
        var edited = source
        guard let index = edited.nodes.firstIndex(where: { $0.id == partner.id }) else { return source }
        edited.nodes[index].features = self.chance(0.3) ? nil : self.subset(partner.oemAllowed)
        let fields = BrandingField.allCases.filter { !partner.locked.contains($0) }
        edited.nodes[index].branding = BrandingSource(values: self.brandingValues(of: fields, owner: partner.id, rate: 0.5))
        edited.nodes[index].status = self.chance(0.5) ? .suspended : nil
        return edited
    }

    private mutating func limits(below ceilings: [String: Int]) -> Limits {
        var limits = Limits()
        limits.ratePerSecond = self.limit("rate", below: ceilings)
        if limits.ratePerSecond != nil { limits.burst = self.limit("burst", below: ceilings) }
        limits.perDay = self.limit("perDay", below: ceilings)
        limits.perMonth = self.limit("perMonth", below: ceilings)
        limits.concurrency = self.limit("concurrency", below: ceilings)
        return limits
    }

    private mutating func limit(_ name: String, below ceilings: [String: Int]) -> Int? {
        self.chance(0.5) ? self.int(1...(ceilings[name] ?? 100_000)) : nil
    }

    mutating func brandingValues(of fields: [BrandingField], owner: String, rate: Double) -> [BrandingField: String] {
        var values: [BrandingField: String] = [:]
        for field in fields where self.chance(rate) {
            values[field] = RandomTrees.brandingValue(field, owner: owner, number: self.int(0...0xffffff))
        }
        return values
    }

    mutating func chance(_ probability: Double) -> Bool {
        Double.random(in: 0..<1, using: &self.rng) < probability
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self.rng)
    }

    mutating func element<T>(of items: [T]) -> T {
        items[self.int(0...(items.count - 1))]
    }

    mutating func subset<T>(_ items: [T], rate: Double = 0.5) -> [T] {
        var chosen: [T] = []
        for item in items where self.chance(rate) { chosen.append(item) }
        return chosen
    }
}
