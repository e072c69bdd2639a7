import XCTest
@testable import Hierarchy

/// Builders for `TreeSource` values. Every node they make is valid on its own — an OEM places its
/// customers in the `eu` pool, a customer subscribes to `starter` — so a test writes down only
/// the fields it is about.
enum Fixtures {
    typealias Edit = (inout NodeSource) -> Void

    // MARK: - Catalog and cells

    static let features = ["ledger", "invoicing", "inventory", "reports", "payroll", "crm"]

    static let packages = [
        PackageSource(name: "starter", features: ["ledger", "invoicing"]),
        PackageSource(name: "professional", features: ["ledger", "invoicing", "inventory", "reports"]),
        PackageSource(name: "enterprise", features: features),
    ]

    static let routes = [
        RouteSource(method: nil, pathPrefix: "/v1/ledger", feature: "ledger", cost: 1),
        RouteSource(method: "POST", pathPrefix: "/v1/ledger", feature: "ledger", cost: 5),
        RouteSource(method: nil, pathPrefix: "/v1/ledger/reports", feature: "reports", cost: 3),
        RouteSource(method: nil, pathPrefix: "/v1/invoices", feature: "invoicing", cost: 1),
        RouteSource(method: "GET", pathPrefix: "/v1/payroll", feature: "payroll", cost: 2),
        RouteSource(method: nil, pathPrefix: "/v1/status", feature: nil, cost: 1),
    ]

    static var catalog: CatalogSource {
        CatalogSource(features: features, packages: packages, routes: routes)
    }

    /// `eu`: two pooled cells and a dedicated one; `us`: one of each; `ap`: only a dedicated
    /// cell, so no tier-and-region placement can succeed there.
    static let cells = [
        CellDescriptor(id: "eu-pool-1", kind: .pooled, region: "eu"),
        CellDescriptor(id: "eu-pool-2", kind: .pooled, region: "eu"),
        CellDescriptor(id: "eu-dedicated-1", kind: .dedicated, region: "eu"),
        CellDescriptor(id: "us-pool-1", kind: .pooled, region: "us"),
        CellDescriptor(id: "us-dedicated-1", kind: .dedicated, region: "us"),
        CellDescriptor(id: "ap-dedicated-1", kind: .dedicated, region: "ap"),
    ]

    static let euPool = PlacementSource(tier: .pooled, region: "eu")
    static let usPool = PlacementSource(tier: .pooled, region: "us")

    // MARK: - Nodes

    /// An OEM that places its customers in the `eu` pool.
    static func oem(_ id: String, _ edit: Edit = { _ in }) -> NodeSource {
        var node = NodeSource(id: id, kind: .oem, placement: euPool)
        edit(&node)
        return node
    }

    static func partner(_ id: String, under parent: String, _ edit: Edit = { _ in }) -> NodeSource {
        var node = NodeSource(id: id, kind: .partner, parent: parent)
        edit(&node)
        return node
    }

    static func customer(_ id: String, under parent: String, package: String = "starter", _ edit: Edit = { _ in }) -> NodeSource {
        var node = NodeSource(id: id, kind: .customer, parent: parent, package: package)
        edit(&node)
        return node
    }

    static func tree(_ nodes: [NodeSource], catalog: CatalogSource = Fixtures.catalog, cells: [CellDescriptor] = Fixtures.cells) -> TreeSource {
        TreeSource(catalog: catalog, nodes: nodes, cells: cells)
    }

    /// The smallest complete tree, `acme/northwind/contoso`, each node edited as given, followed
    /// by `extra` nodes.
    static func chain(
        oem oemEdit: Edit = { _ in }, partner partnerEdit: Edit = { _ in }, customer customerEdit: Edit = { _ in }, adding extra: [NodeSource] = []
    ) -> TreeSource {
        tree([
            oem("acme", oemEdit),
            partner("northwind", under: "acme", partnerEdit),
            customer("contoso", under: "northwind", customerEdit),
        ] + extra)
    }

    static let oemPath = "acme"
    static let partnerPath = "acme/northwind"
    static let customerPath = "acme/northwind/contoso"
}

extension TreeSource {
    func with(catalog: CatalogSource) -> TreeSource {
        TreeSource(catalog: catalog, nodes: self.nodes, cells: self.cells)
    }

    /// The tree with one more catalog route, at index `Fixtures.routes.count`.
    func with(route: RouteSource) -> TreeSource {
        var catalog = self.catalog
        catalog.routes.append(route)
        return self.with(catalog: catalog)
    }
}

// MARK: - Reading a snapshot by id text

extension TenantSnapshot {
    func policy(of id: String) -> EffectivePolicy? {
        (try? NodeID(id)).flatMap { self.policy($0) }
    }

    /// Effective feature names of a node in catalog order; empty for an unknown node.
    func featureNames(of id: String) -> [String] {
        self.policy(of: id).map { self.catalog.names($0.features) } ?? []
    }
}

extension EffectivePolicy {
    /// Everything inheritance decides for a node, as one comparable value.
    var digest: PolicyDigest {
        PolicyDigest(
            path: self.path.description, status: self.status, suspendedBy: self.suspendedBy?.rawValue, features: self.features,
            limits: self.limits, cell: self.cell, residency: self.residency, branding: self.branding, origins: self.origins
        )
    }
}

struct PolicyDigest: Hashable, Sendable {
    var path: String
    var status: TenantStatus
    var suspendedBy: String?
    var features: FeatureSet
    var limits: [LevelLimits]
    var cell: String?
    var residency: Set<String>?
    var branding: EffectiveBranding
    var origins: [String]
}

// MARK: - Compiling in XCTest

extension XCTestCase {
    /// Compiles a tree that must be valid; on rejection the test fails with every issue listed.
    func compile(_ source: TreeSource, file: StaticString = #filePath, line: UInt = #line) throws -> TenantSnapshot {
        do {
            return try TreeCompiler.compile(source)
        } catch {
            XCTFail("expected a valid tree, but it was rejected:\n\(error)", file: file, line: line)
            throw error
        }
    }

    /// The issues of a tree that must be rejected.
    func issues(of source: TreeSource, file: StaticString = #filePath, line: UInt = #line) -> [TreeIssue] {
        do {
            let snapshot = try TreeCompiler.compile(source)
            XCTFail("expected the tree to be rejected, but it compiled to \(snapshot.nodeCount) nodes", file: file, line: line)
            return []
        } catch {
            return error.issues
        }
    }

    /// The tree is rejected with exactly one issue, at `node` and `field`, whose message contains
    /// `message`. Exactly one: a mistake must be reported once, without follow-up noise.
    func assertOnlyIssue(
        _ source: TreeSource, node: String, field: String, message: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let found = self.issues(of: source, file: file, line: line)
        XCTAssertEqual(found.count, 1, "expected exactly one issue, got:\n\(found.map(\.description).joined(separator: "\n"))", file: file, line: line)
        guard let issue = found.first else { return }
        XCTAssertEqual(issue.node, node, file: file, line: line)
        XCTAssertEqual(issue.field, field, file: file, line: line)
        XCTAssertTrue(issue.message.contains(message), "'\(issue.message)' does not contain '\(message)'", file: file, line: line)
    }

    /// The tree is rejected, and one of its issues is at `node` and `field` with a message that
    /// contains `message`.
    func assertIssue(
        _ source: TreeSource, node: String, field: String, message: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let found = self.issues(of: source, file: file, line: line)
        XCTAssertTrue(
            found.contains { $0.node == node && $0.field == field && $0.message.contains(message) },
            "no issue '\(node) \(field): …\(message)…' among:\n\(found.map(\.description).joined(separator: "\n"))", file: file, line: line
        )
    }
}
