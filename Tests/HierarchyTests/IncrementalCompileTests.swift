import XCTest
@testable import Hierarchy

/// An incremental compile is a full compile of the same tree, only cheaper: for every kind of
/// change an administrator makes — valid or not — both give the same snapshot or the same issues.
final class IncrementalCompileTests: XCTestCase {
    /// OEMs × partners × customers with every fragment the compiler resolves: OEM packages,
    /// limits and customer defaults, locked branding, portal domains, origins, issuers, residency,
    /// a suspended partner, dedicated cells, add-ons.
    static func generated(oems: Int = 3, partners: Int = 3, customers: Int = 4) -> TreeSource {
        var nodes: [NodeSource] = []
        for o in 0..<oems {
            let oem = "o\(o)"
            nodes.append(Fixtures.oem(oem) { node in
                node.features = o == 0 ? Fixtures.features : Array(Fixtures.features.prefix(5))
                node.packages = [PackageSource(name: "\(oem)-basic", features: ["ledger"])]
                node.limits = Limits(ratePerSecond: 1000, burst: 2000, perDay: 1_000_000)
                node.customerDefaults = Limits(ratePerSecond: 10, perDay: 1000)
                node.residency = ["eu", "us"]
                node.branding = BrandingSource(values: [.displayName: "OEM \(o)", .logoUrl: "https://cdn.o\(o).example/logo.svg"], locked: [.logoUrl])
                node.portalDomains = ["erp.o\(o).example"]
                node.origins = ["https://app.o\(o).example", "https://admin.o\(o).example"]
                node.issuers = ["https://id.o\(o).example"]
                node.partnerIssuerSelfService = o == 1 ? true : nil
            })
            for p in 0..<partners {
                let partner = "p\(o)-\(p)"
                nodes.append(Fixtures.partner(partner, under: oem) { node in
                    node.status = p == 2 ? .suspended : nil
                    node.limits = Limits(ratePerSecond: 500, perDay: 100_000)
                    node.branding = BrandingSource(values: [.displayName: "Partner \(o)-\(p)"])
                    node.portalDomains = ["portal.p\(o)-\(p).example"]
                    node.origins = p == 0 ? ["https://app.o\(o).example"] : nil
                    node.issuers = p == 1 ? ["https://id.p\(o)-\(p).example"] : []
                    node.placement = p == 1 ? Fixtures.usPool : nil
                })
                for c in 0..<customers {
                    nodes.append(Fixtures.customer("c\(o)-\(p)-\(c)", under: partner, package: c % 3 == 0 ? "\(oem)-basic" : "starter") { node in
                        node.addOns = c % 2 == 0 ? ["reports"] : []
                        node.limits = c == 1 ? Limits(ratePerSecond: 5, burst: 8) : nil
                        node.branding = c == 2 ? BrandingSource(values: [.primaryColor: "#0f0f0f"]) : nil
                        if o == 0, p == 0, c == 3 { node.placement = PlacementSource(cell: "eu-dedicated-1") }
                    })
                }
            }
        }
        return Fixtures.tree(nodes)
    }

    /// One change: nodes replaced or added (appended when new), ids removed.
    struct Change {
        var name: String
        var changed: [NodeSource]
        var removed: Set<String> = []

        func apply(to source: TreeSource) -> TreeSource {
            var nodes = source.nodes.filter { !self.removed.contains($0.id) }
            for node in self.changed {
                if let index = nodes.firstIndex(where: { $0.id == node.id }) { nodes[index] = node } else { nodes.append(node) }
            }
            return TreeSource(catalog: source.catalog, nodes: nodes, cells: source.cells)
        }
    }

    /// Compiles `change` both ways and fails the test if they disagree. Returns the snapshot
    /// after the change, or nil when the change is invalid (both rejected it alike).
    @discardableResult
    func assertEquivalent(_ change: Change, on source: TreeSource, previous: TenantSnapshot, file: StaticString = #filePath, line: UInt = #line) -> (TreeSource, TenantSnapshot)? {
        let next = change.apply(to: source)
        let full = Result { () throws(TreeValidationError) in try TreeCompiler.compile(next) }
        let incremental = Result { () throws(TreeValidationError) in
            try TreeCompiler.compile(next, reusing: previous, changed: change.changed, removed: change.removed)
        }
        switch (full, incremental) {
        case (.success(let full), .success(let incremental)):
            XCTAssertEqual(incremental.servesSameTree(as: full), [], "\(change.name): incremental differs from full", file: file, line: line)
            XCTAssertEqual(full.servesSameTree(as: incremental), [], "\(change.name): full differs from incremental", file: file, line: line)
            // Not by falling back: every valid change here is one the incremental path decides alone.
            XCTAssertNotNil(
                Compilation.incremental(source: next, previous: previous, changed: change.changed, removed: change.removed),
                "\(change.name): fell back to a full compile", file: file, line: line
            )
            return (next, incremental)
        case (.failure(let full), .failure(let incremental)):
            XCTAssertEqual(incremental.issues.map(\.description), full.issues.map(\.description), change.name, file: file, line: line)
            return nil
        case (.success, .failure(let error)):
            XCTFail("\(change.name): only the incremental compile rejected it: \(error)", file: file, line: line)
        case (.failure(let error), .success):
            XCTFail("\(change.name): only the full compile rejected it: \(error)", file: file, line: line)
        }
        return nil
    }

    func node(_ id: String, in source: TreeSource, _ edit: (inout NodeSource) -> Void) -> NodeSource {
        var node = source.nodes.first { $0.id == id }!
        edit(&node)
        return node
    }

    func testEveryKindOfChangeCompilesIncrementallyToWhatAFullCompileGives() throws {
        let source = Self.generated()
        let previous = try TreeCompiler.compile(source)
        let changes: [Change] = [
            Change(name: "customer branding", changed: [node("c0-0-1", in: source) { $0.branding = BrandingSource(values: [.displayName: "Contoso"]) }]),
            Change(name: "customer package", changed: [node("c1-1-1", in: source) { $0.package = "professional" }]),
            Change(name: "customer add-ons", changed: [node("c1-1-1", in: source) { $0.addOns = ["payroll"] }]),
            Change(name: "customer limits", changed: [node("c0-1-2", in: source) { $0.limits = Limits(ratePerSecond: 3, perDay: 50) }]),
            Change(name: "customer limits above its partner", changed: [node("c0-1-2", in: source) { $0.limits = Limits(ratePerSecond: 30_000) }]),
            Change(name: "unknown package", changed: [node("c0-1-2", in: source) { $0.package = "gold" }]),
            Change(name: "locked branding below", changed: [node("c0-1-2", in: source) { $0.branding = BrandingSource(values: [.logoUrl: "https://x.example/l.svg"]) }]),
            Change(name: "OEM-wide branding", changed: [node("o1", in: source) { $0.branding = BrandingSource(values: [.displayName: "Renamed", .primaryColor: "#112233"], locked: [.primaryColor]) }]),
            Change(name: "OEM-wide package", changed: [node("o0", in: source) { $0.packages = [PackageSource(name: "o0-basic", features: ["ledger", "invoicing"])] }]),
            Change(name: "OEM features narrowed", changed: [node("o0", in: source) { $0.features = ["ledger", "invoicing", "reports"] }]),
            Change(name: "OEM features narrowed below a package", changed: [node("o0", in: source) { $0.features = ["invoicing"] }]),
            Change(name: "OEM customer defaults", changed: [node("o2", in: source) { $0.customerDefaults = Limits(ratePerSecond: 20, concurrency: 4) }]),
            Change(name: "OEM limits below a partner's", changed: [node("o2", in: source) { $0.limits = Limits(ratePerSecond: 100) }]),
            Change(name: "OEM origins", changed: [node("o0", in: source) { $0.origins = ["https://app.o0.example"] }]),
            Change(name: "OEM issuer self-service", changed: [node("o2", in: source) { $0.partnerIssuerSelfService = true }]),
            Change(name: "OEM residency narrowed", changed: [node("o0", in: source) { $0.residency = ["eu"] }]),
            Change(name: "partner policy", changed: [node("p0-1", in: source) { $0.limits = Limits(ratePerSecond: 50, perDay: 5000, concurrency: 7) }]),
            Change(name: "partner placement", changed: [node("p2-0", in: source) { $0.placement = Fixtures.usPool }]),
            Change(name: "partner issuers", changed: [node("p2-0", in: source) { $0.issuers = ["https://id.p2-0.example", "https://login.p2-0.example"] }]),
            Change(name: "issuer taken elsewhere", changed: [node("p2-0", in: source) { $0.issuers = ["https://id.o1.example"] }]),
            Change(name: "issuer moved between nodes", changed: [
                node("o0", in: source) { $0.issuers = [] }, node("p1-0", in: source) { $0.issuers = ["https://id.o0.example"] },
            ]),
            Change(name: "portal domain", changed: [node("p1-2", in: source) { $0.portalDomains = ["portal.new.example", "erp.p1-2.example"] }]),
            Change(name: "portal domain taken", changed: [node("p1-2", in: source) { $0.portalDomains = ["erp.o0.example"] }]),
            Change(name: "suspend partner", changed: [node("p0-0", in: source) { $0.status = .suspended }]),
            Change(name: "reactivate partner", changed: [node("p0-2", in: source) { $0.status = nil }]),
            Change(name: "suspend OEM", changed: [node("o1", in: source) { $0.status = .suspended }]),
            Change(name: "create customer", changed: [Fixtures.customer("new-customer", under: "p1-1", package: "enterprise")]),
            Change(name: "create customer with a package its OEM may not sell", changed: [Fixtures.customer("new-customer", under: "p1-1", package: "o0-basic")]),
            Change(name: "create customer under an unknown partner", changed: [Fixtures.customer("new-customer", under: "nobody")]),
            Change(name: "create customer under a customer", changed: [Fixtures.customer("new-customer", under: "c0-0-0")]),
            Change(name: "create partner with customers", changed: [
                Fixtures.partner("new-partner", under: "o2") { $0.portalDomains = ["portal.new-partner.example"] },
                Fixtures.customer("new-c1", under: "new-partner"), Fixtures.customer("new-c2", under: "new-partner", package: "o2-basic"),
            ]),
            Change(name: "create OEM", changed: [Fixtures.oem("o9") { $0.issuers = ["https://id.o9.example"] }, Fixtures.partner("p9", under: "o9")]),
            Change(name: "second customer on a dedicated cell", changed: [node("c2-0-0", in: source) { $0.placement = PlacementSource(cell: "eu-dedicated-1") }]),
            Change(name: "dedicated cell freed and taken", changed: [
                node("c0-0-3", in: source) { $0.placement = nil }, node("c2-0-0", in: source) { $0.placement = PlacementSource(cell: "eu-dedicated-1") },
            ]),
            Change(name: "soft-delete customer", changed: [], removed: ["c0-0-3"]),
            Change(name: "delete partner and its customers", changed: [], removed: ["p2-1", "c2-1-0", "c2-1-1", "c2-1-2", "c2-1-3"]),
            Change(name: "delete a partner with customers", changed: [], removed: ["p2-1"]),
            Change(name: "delete a partner whose customers move", changed: [
                node("c2-1-0", in: source) { $0.parent = "p2-0" }, node("c2-1-1", in: source) { $0.parent = "p2-0" },
                node("c2-1-2", in: source) { $0.parent = "p2-0" }, node("c2-1-3", in: source) { $0.parent = "p2-0" },
            ], removed: ["p2-1"]),
            Change(name: "move customer within its OEM", changed: [node("c0-1-0", in: source) { $0.parent = "p0-2" }]),
            Change(name: "move customer to another OEM", changed: [node("c1-1-1", in: source) { $0.parent = "p2-2" }]),
            Change(name: "move customer with its OEM's package away", changed: [node("c1-1-0", in: source) { $0.parent = "p2-2" }]),
            Change(name: "move partner to another OEM", changed: [node("p1-0", in: source) { $0.parent = "o2" }]),
            Change(name: "kind changed", changed: [node("p1-0", in: source) { $0.kind = .customer; $0.parent = "p1-1"; $0.package = "starter" }]),
            Change(name: "OEM given a parent", changed: [node("o2", in: source) { $0.parent = "o1" }]),
            Change(name: "nothing changed", changed: [node("c0-0-0", in: source) { _ in }]),
        ]
        for change in changes {
            self.assertEquivalent(change, on: source, previous: previous)
        }
    }

    /// A long random sequence of changes, each compiled incrementally from the previous
    /// incremental result: what one gateway node does with the store's change log.
    func testARandomSequenceOfChangesStaysEqualToAFullCompile() throws {
        var random = SplitMix64(seed: 0x5eed_1234)
        var source = Self.generated(oems: 3, partners: 3, customers: 5)
        var snapshot = try TreeCompiler.compile(source)
        var applied = 0
        var rejected = 0
        for step in 0..<250 {
            let change = Self.randomChange(in: source, step: step, random: &random)
            if let (next, compiled) = self.assertEquivalent(change, on: source, previous: snapshot) {
                source = next
                snapshot = compiled
                applied += 1
            } else {
                rejected += 1
            }
        }
        let final = try TreeCompiler.compile(source)
        XCTAssertEqual(snapshot.servesSameTree(as: final), [])
        XCTAssertGreaterThan(applied, 100, "most random changes are valid")
        XCTAssertGreaterThan(rejected, 5, "some random changes are rejected, and alike")
    }

    static func randomChange(in source: TreeSource, step: Int, random: inout SplitMix64) -> Change {
        let nodes = source.nodes
        func pick(_ kind: NodeKind) -> NodeSource {
            let candidates = nodes.filter { $0.kind == kind }
            return candidates[Int(random.next() % UInt64(candidates.count))]
        }
        func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
        let colors = ["#101010", "#202020", "#303030"]
        switch random.next() % 12 {
        case 0:
            var node = pick(.customer)
            node.branding = chance(30) ? nil : BrandingSource(values: [.primaryColor: colors[step % 3], .displayName: "C \(step)"])
            return Change(name: "step \(step): customer branding", changed: [node])
        case 1:
            var node = pick(.customer)
            node.package = ["starter", "professional", "enterprise", "\(node.parent.map { _ in "o0" } ?? "o0")-basic", "o1-basic"][Int(random.next() % 5)]
            node.addOns = chance(50) ? ["reports"] : []
            return Change(name: "step \(step): customer package", changed: [node])
        case 2:
            var node = pick(.oem)
            node.branding = BrandingSource(values: [.displayName: "OEM \(step)", .primaryColor: colors[step % 3]], locked: chance(50) ? [.primaryColor] : [])
            return Change(name: "step \(step): OEM branding", changed: [node])
        case 3:
            var node = pick(.oem)
            node.features = chance(50) ? Fixtures.features : Array(Fixtures.features.prefix(4))
            node.customerDefaults = chance(50) ? Limits(ratePerSecond: 10 + step % 7) : nil
            return Change(name: "step \(step): OEM entitlements", changed: [node])
        case 4:
            var node = pick(.partner)
            node.status = chance(30) ? .suspended : nil
            node.limits = chance(70) ? Limits(ratePerSecond: 100 + step, perDay: 10_000) : nil
            return Change(name: "step \(step): partner policy", changed: [node])
        case 5:
            var node = pick(.partner)
            node.issuers = chance(50) ? ["https://id.\(node.id).example"] : (chance(30) ? ["https://id.o0.example"] : [])
            node.portalDomains = chance(50) ? ["portal.\(node.id).example"] : ["portal.\(step % 4).example"]
            return Change(name: "step \(step): partner issuers and domains", changed: [node])
        case 6:
            let parent = pick(.partner)
            let customer = Fixtures.customer("n\(step)", under: parent.id, package: chance(80) ? "starter" : "o2-basic")
            return Change(name: "step \(step): create customer", changed: [customer])
        case 7:
            let customer = pick(.customer)
            return Change(name: "step \(step): delete customer", changed: [], removed: [customer.id])
        case 8:
            var customer = pick(.customer)
            customer.parent = pick(.partner).id
            return Change(name: "step \(step): move customer", changed: [customer])
        case 9:
            var customer = pick(.customer)
            customer.placement = chance(50) ? PlacementSource(cell: ["eu-dedicated-1", "us-dedicated-1"][step % 2]) : nil
            return Change(name: "step \(step): customer placement", changed: [customer])
        case 10:
            let oem = pick(.oem)
            let partner = Fixtures.partner("np\(step)", under: oem.id)
            return Change(name: "step \(step): create partner", changed: [partner, Fixtures.customer("nc\(step)", under: partner.id)])
        default:
            var node = pick(.oem)
            node.origins = chance(50) ? ["https://app.\(node.id).example"] : nil
            node.residency = chance(50) ? ["eu", "us"] : ["eu"]
            return Change(name: "step \(step): OEM origins and residency", changed: [node])
        }
    }
}

/// A small seeded generator, so that a failing random sequence can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9e37_79b9_7f4a_7c15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49eb_133d_11eb
        return z ^ (z >> 31)
    }
}
