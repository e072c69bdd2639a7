import Foundation
import Hierarchy
import XCTest
@testable import GatewayConfig

/// The tenant-tree file: what the loader reads into a `TreeSource`, where it locates each value,
/// and the shape problems it reports (meaning is the Hierarchy compiler's).
final class TenantTreeLoaderTests: XCTestCase {
    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)  // Tests/GatewayConfigTests/TenantTreeLoaderTests.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private static let cells = [
        GatewaySettings.Cell(id: "pooled-eu-1", kind: .pooled, region: "eu-west", endpoints: [.init(host: "127.0.0.1", port: 9101)]),
        GatewaySettings.Cell(id: "dedicated-acme", kind: .dedicated, region: "eu-west", endpoints: [.init(host: "127.0.0.1", port: 9103)]),
    ]

    private static let minimalTreeYAML = """
        catalog:
          features: [ledger]
        tenants:
          - id: acme
            kind: oem
        """

    // MARK: - The example file

    func testExampleTreeNamedByTheExampleSettingsLoadsWithItsValues() throws {
        let settingsPath = Self.packageRoot.appendingPathComponent("deploy/examples/gateway.yaml").path
        let settings = try SettingsLoader.load(path: settingsPath)
        let treePath = Self.packageRoot.appendingPathComponent("deploy/examples/tenants.yaml").standardizedFileURL.path
        XCTAssertEqual(settings.tenantTreePath, treePath)

        let tree = try TenantTreeLoader.load(path: treePath, cells: settings.cells)

        XCTAssertEqual(tree.cells.map(\.id), settings.cells.map(\.id))
        XCTAssertEqual(tree.cells.first { $0.id == "dedicated-acme" }, CellDescriptor(id: "dedicated-acme", kind: .dedicated, region: "eu-west", fallback: ["pooled-eu-1"]))
        XCTAssertEqual(Set(tree.cells.filter { $0.kind == .pooled }.map(\.region)), ["eu-west", "us-east"])

        XCTAssertEqual(tree.catalog.features, ["ledger", "invoicing", "inventory", "payroll", "crm", "analytics", "api-export"])
        XCTAssertEqual(tree.catalog.packages.map(\.name), ["starter", "business", "complete"])
        XCTAssertEqual(tree.catalog.packages[0], PackageSource(name: "starter", features: ["ledger", "invoicing"]))
        XCTAssertEqual(tree.catalog.routes.first, RouteSource(method: "GET", pathPrefix: "/v1/health", feature: nil, cost: 1))
        XCTAssertEqual(tree.catalog.routes.first { $0.pathPrefix == "/v1/payroll/runs" }?.cost, 50)
        // Every feature has a route.
        XCTAssertEqual(Set(tree.catalog.routes.compactMap(\.feature)), Set(tree.catalog.features))

        let kinds = tree.nodes.map(\.kind)
        XCTAssertEqual(kinds.filter { $0 == .oem }.count, 2)
        XCTAssertEqual(kinds.filter { $0 == .partner }.count, 4)
        XCTAssertEqual(kinds.filter { $0 == .customer }.count, 6)
        let nodes = Dictionary(uniqueKeysWithValues: tree.nodes.map { ($0.id, $0) })

        let acme = try XCTUnwrap(nodes["acme-soft"])
        XCTAssertNil(acme.parent)
        XCTAssertEqual(acme.status, .active)
        XCTAssertEqual(acme.packages.map(\.name), ["acme-essentials", "acme-operations", "acme-insight"])
        XCTAssertEqual(acme.limits, Limits(ratePerSecond: 1000, burst: 2000, perDay: 5_000_000, perMonth: 100_000_000, concurrency: 400))
        XCTAssertEqual(acme.placement, PlacementSource(tier: .pooled, region: "eu-west"))
        XCTAssertEqual(acme.residency, ["eu-west", "us-east"])
        XCTAssertEqual(acme.branding?.values[.primaryColor], "#1a2b3c")
        XCTAssertEqual(acme.branding?.values.count, BrandingField.allCases.count)
        XCTAssertEqual(acme.branding?.locked, [.termsUrl, .privacyUrl])
        XCTAssertEqual(acme.issuers, ["https://id.acme.example"])

        XCTAssertEqual(nodes["northwind-it"]?.parent, "acme-soft")
        XCTAssertNil(nodes["northwind-it"]?.branding?.values[.termsUrl])
        XCTAssertEqual(nodes["globex-partners"]?.status, .suspended)
        XCTAssertEqual(nodes["contoso-dist"]?.placement, PlacementSource(cell: "dedicated-acme"))
        XCTAssertEqual(nodes["contoso-dist"]?.package, "acme-operations")
        XCTAssertEqual(nodes["fabrikam-clinics"]?.addOns, ["crm"])
        XCTAssertNil(nodes["fabrikam-clinics"]?.limits)
        XCTAssertNil(nodes["direct-online"]?.features)
        XCTAssertEqual(nodes["direct"]?.features?.count, 7)

        // Positions point at the lines of the file as written.
        let file = try String(contentsOfFile: treePath, encoding: .utf8)
        let acmeLine = try Self.line(in: file, containing: "- id: acme-soft")
        XCTAssertEqual(acme.location, SourceLocation(line: acmeLine, column: 5))
        XCTAssertEqual(acme.fieldLocations["id"]?.line, acmeLine)
        XCTAssertEqual(acme.fieldLocations["kind"]?.line, acmeLine + 1)
        XCTAssertEqual(acme.fieldLocations["packages"]?.line, try Self.line(in: file, containing: "packages:", after: acmeLine))
        XCTAssertEqual(acme.fieldLocations["packages.acme-insight"]?.line, try Self.line(in: file, containing: "acme-insight:"))
        let limitsLine = try Self.line(in: file, containing: "limits:", after: acmeLine)
        XCTAssertEqual(acme.fieldLocations["limits"]?.line, limitsLine)
        XCTAssertEqual(acme.fieldLocations["limits.concurrency"]?.line, limitsLine)
        XCTAssertEqual(acme.fieldLocations["customerDefaults.perMonth"]?.line, limitsLine + 1)
        XCTAssertEqual(acme.fieldLocations["placement.region"]?.line, limitsLine + 2)
        XCTAssertEqual(acme.fieldLocations["branding"]?.line, try Self.line(in: file, containing: "branding:", after: acmeLine))
        XCTAssertEqual(acme.fieldLocations["branding.logoUrl"]?.line, try Self.line(in: file, containing: "logoUrl: https://cdn.acme.example"))
        XCTAssertEqual(acme.fieldLocations["branding.locked"]?.line, try Self.line(in: file, containing: "locked: [termsUrl, privacyUrl]"))
        XCTAssertEqual(acme.fieldLocations["issuers"]?.line, try Self.line(in: file, containing: "issuers:", after: acmeLine))
        let contosoLine = try Self.line(in: file, containing: "- id: contoso-dist")
        XCTAssertEqual(nodes["contoso-dist"]?.fieldLocations["placement.cell"]?.line, try Self.line(in: file, containing: "placement: { cell:", after: contosoLine))

        XCTAssertEqual(tree.catalog.locations["features"]?.line, try Self.line(in: file, containing: "  features:", after: try Self.line(in: file, containing: "catalog:")))
        XCTAssertEqual(tree.catalog.locations["features[3].requires"]?.line, try Self.line(in: file, containing: "- { name: payroll, requires: [ledger] }"))
        XCTAssertEqual(tree.catalog.requires["payroll"], ["ledger"])
        XCTAssertEqual(tree.catalog.locations["packages.business"]?.line, try Self.line(in: file, containing: "business: ["))
        XCTAssertEqual(tree.catalog.locations["routes[0]"]?.line, try Self.line(in: file, containing: "- path: /v1/health"))
        XCTAssertEqual(tree.catalog.locations["routes[2]"]?.line, try Self.line(in: file, containing: "- path: /v1/ledger/close"))

        // The example is meant to be valid, not just well-formed: the compiler accepts it.
        do {
            _ = try TreeCompiler.compile(tree)
        } catch {
            XCTFail("the example tree does not compile:\n\(error)")
        }
    }

    // MARK: - Values and positions

    func testEveryFieldIsReadAndLocatedUnderItsName() throws {
        let yaml = """
            catalog:
              features:
                - ledger
                - crm
              packages:
                starter: [ledger]
              routes:
                - path: /v1/ledger
                  method: POST
                  feature: ledger
                  cost: 7
            tenants:
              - id: acme
                kind: oem
                status: suspended
                features: [ledger, crm]
                packages:
                  acme-basic: [ledger]
                  acme-crm: [crm, ledger]
                limits: {rate: 1, burst: 2, perDay: 3, perMonth: 4, concurrency: 5}
                customerDefaults:
                  rate: 1000000000000
                placement: {cell: c, tier: dedicated, region: r}
                residency: [eu-west]
                branding:
                  displayName: Acme
                  logoUrl: https://a/l.svg
                  faviconUrl: https://a/f.ico
                  primaryColor: "#000000"
                  accentColor: '#ffffff'
                  supportEmail: s@a
                  supportUrl: https://a/s
                  termsUrl: https://a/t
                  privacyUrl: https://a/p
                  locked: [displayName, privacyUrl]
                portalDomains: [erp.a]
                origins: []
                issuers:
                  - iss: https://id.a
                    audience: erp
                    allowHMAC: true
                    keys: [{kid: k1, alg: HS256, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]
              - id: c1
                kind: customer
                parent: p1
                package: starter
                addOns: [crm, ledger]
            """
        let tree = try TenantTreeLoader.parse(yaml, cells: Self.cells)

        XCTAssertEqual(tree.catalog.features, ["ledger", "crm"])
        XCTAssertEqual(tree.catalog.packages, [PackageSource(name: "starter", features: ["ledger"])])
        XCTAssertEqual(tree.catalog.routes, [RouteSource(method: "POST", pathPrefix: "/v1/ledger", feature: "ledger", cost: 7)])
        XCTAssertEqual(tree.catalog.locations["features"], SourceLocation(line: 2, column: 3))
        XCTAssertEqual(tree.catalog.locations["features[1]"], SourceLocation(line: 4, column: 7))
        XCTAssertEqual(tree.catalog.locations["packages.starter"], SourceLocation(line: 6, column: 5))
        XCTAssertEqual(tree.catalog.locations["routes[0]"], SourceLocation(line: 8, column: 7))

        XCTAssertEqual(tree.nodes.count, 2)
        let acme = tree.nodes[0]
        XCTAssertEqual(acme.id, "acme")
        XCTAssertEqual(acme.kind, .oem)
        XCTAssertEqual(acme.status, .suspended)
        XCTAssertEqual(acme.features, ["ledger", "crm"])
        XCTAssertEqual(acme.packages, [PackageSource(name: "acme-basic", features: ["ledger"]), PackageSource(name: "acme-crm", features: ["crm", "ledger"])])
        XCTAssertEqual(acme.limits, Limits(ratePerSecond: 1, burst: 2, perDay: 3, perMonth: 4, concurrency: 5))
        XCTAssertEqual(acme.customerDefaults, Limits(ratePerSecond: 1_000_000_000_000))
        XCTAssertEqual(acme.placement, PlacementSource(cell: "c", tier: .dedicated, region: "r"))
        XCTAssertEqual(acme.residency, ["eu-west"])
        XCTAssertEqual(acme.branding?.values[.accentColor], "#ffffff")
        XCTAssertEqual(acme.branding?.values[.supportEmail], "s@a")
        XCTAssertEqual(acme.branding?.locked, [.displayName, .privacyUrl])
        XCTAssertEqual(acme.portalDomains, ["erp.a"])
        XCTAssertEqual(acme.origins, [], "an empty list is a value, not an absence")
        XCTAssertEqual(acme.issuers, ["https://id.a"])
        XCTAssertEqual(acme.location, SourceLocation(line: 13, column: 5))

        let expectedFields: [String: Int] = [
            "id": 13, "kind": 14, "status": 15, "features": 16, "packages": 17, "packages.acme-basic": 18, "packages.acme-crm": 19,
            "limits": 20, "limits.rate": 20, "limits.burst": 20, "limits.perDay": 20, "limits.perMonth": 20, "limits.concurrency": 20,
            "customerDefaults": 21, "customerDefaults.rate": 22,
            "placement": 23, "placement.cell": 23, "placement.tier": 23, "placement.region": 23, "residency": 24,
            "branding": 25, "branding.displayName": 26, "branding.logoUrl": 27, "branding.faviconUrl": 28, "branding.primaryColor": 29,
            "branding.accentColor": 30, "branding.supportEmail": 31, "branding.supportUrl": 32, "branding.termsUrl": 33,
            "branding.privacyUrl": 34, "branding.locked": 35, "portalDomains": 36, "origins": 37, "issuers": 38,
        ]
        XCTAssertEqual(Set(acme.fieldLocations.keys), Set(expectedFields.keys))
        for (field, line) in expectedFields {
            XCTAssertEqual(acme.fieldLocations[field]?.line, line, field)
        }
        // Keys are located where they are written: `limits.burst` at `burst`, not at `limits`.
        XCTAssertEqual(acme.fieldLocations["limits"]?.column, 5)
        XCTAssertEqual(acme.fieldLocations["limits.burst"]?.column, 23)

        let customer = tree.nodes[1]
        XCTAssertEqual(customer.parent, "p1")
        XCTAssertEqual(customer.package, "starter")
        XCTAssertEqual(customer.addOns, ["crm", "ledger"])
        XCTAssertNil(customer.status)
        XCTAssertNil(customer.features)
        XCTAssertNil(customer.limits)
        XCTAssertNil(customer.residency)
        XCTAssertNil(customer.origins)
        XCTAssertNil(customer.branding)
        XCTAssertEqual(customer.portalDomains, [])
        XCTAssertEqual(Set(customer.fieldLocations.keys), ["id", "kind", "parent", "package", "addOns"])
    }

    func testRouteCostDefaultsToOneAndMethodAndFeatureToAny() throws {
        let yaml = Self.minimalTreeYAML.replacingOccurrences(of: "features: [ledger]", with: "routes: [{path: /v1/health}]")
        let tree = try TenantTreeLoader.parse(yaml, cells: [])
        XCTAssertEqual(tree.catalog.routes, [RouteSource(method: nil, pathPrefix: "/v1/health", feature: nil, cost: 1)])
        XCTAssertEqual(tree.catalog.features, [])
        XCTAssertEqual(tree.catalog.packages, [])
    }

    func testARoutesExposedHeadersAreReadAsWritten() throws {
        let yaml = Self.minimalTreeYAML.replacingOccurrences(of: "features: [ledger]", with: "routes: [{path: /v1/ledger, exposeHeaders: [ETag, X-Total-Count]}]")
        let tree = try TenantTreeLoader.parse(yaml, cells: [])
        XCTAssertEqual(tree.catalog.routes.first?.exposeHeaders, ["ETag", "X-Total-Count"])
        // Written back the same way (what the admin store keeps).
        let reread = try TenantTreeLoader.parseDocument(TenantTreeWriter.yaml(TenantTreeDocument(tree: tree, issuers: [])), cells: [])
        XCTAssertEqual(reread.tree.catalog.routes, tree.catalog.routes)
    }

    func testCellsAreHandedOnAsDescriptors() throws {
        let tree = try TenantTreeLoader.parse(Self.minimalTreeYAML, cells: Self.cells)
        XCTAssertEqual(tree.cells, [
            CellDescriptor(id: "pooled-eu-1", kind: .pooled, region: "eu-west"),
            CellDescriptor(id: "dedicated-acme", kind: .dedicated, region: "eu-west"),
        ])
    }

    /// Ids, parents, features, cells, URLs, colours, narrowing and limits against the parent are
    /// the compiler's to judge: the loader passes them on exactly as written.
    func testSemanticMistakesArePassedOnAsWritten() throws {
        let yaml = """
            catalog:
              features: [ledger, ledger]
              packages:
                starter: [nothing-like-this]
              routes:
                - path: no-slash
                  method: fetch
                  feature: teleport
            tenants:
              - id: Not_An_Id
                kind: customer
                parent: nobody
                features: [teleport, ledger, teleport]
                package: missing
                limits: {rate: 5}
                placement: {cell: no-such-cell, tier: pooled}
                residency: [mars]
                branding:
                  logoUrl: http://insecure
                  primaryColor: red
              - id: Not_An_Id
                kind: oem
                parent: Not_An_Id
                limits: {rate: 1}
                portalDomains: [x.example, x.example]
            """
        let tree = try TenantTreeLoader.parse(yaml, cells: [])
        XCTAssertEqual(tree.catalog.features, ["ledger", "ledger"])
        XCTAssertEqual(tree.catalog.routes, [RouteSource(method: "fetch", pathPrefix: "no-slash", feature: "teleport", cost: 1)])
        XCTAssertEqual(tree.nodes.map(\.id), ["Not_An_Id", "Not_An_Id"])
        XCTAssertEqual(tree.nodes[0].features, ["teleport", "ledger", "teleport"])
        XCTAssertEqual(tree.nodes[0].placement, PlacementSource(cell: "no-such-cell", tier: .pooled))
        XCTAssertEqual(tree.nodes[0].branding?.values[.logoUrl], "http://insecure")
        XCTAssertEqual(tree.nodes[1].parent, "Not_An_Id")
        XCTAssertEqual(tree.nodes[1].portalDomains, ["x.example", "x.example"])
    }

    // MARK: - Shape errors

    func testEveryShapeProblemIsReportedWithItsPathAndLine() {
        let yaml = """
            catalog:
              features: [ledger, [nested]]
              packages:
                starter: ledger
              routes:
                - method: GET
                - path: /v1/x
                  cost: 0
                - path: /v1/y
                  cost: cheap
                  weight: 2
              plans: {}
            tenants:
              - kind: oem
              - id: acme
                kind: reseller
                status: paused
                features: ledger
              - id: northwind
                kind: partner
                parent: acme
                limits: {rate: 0, burst: 1.5, perDay: 1000000000001, perWeek: 5}
                customerDefaults: {concurrency: -1}
                placement: {tier: shared, zone: eu}
                branding:
                  logoURL: https://x.example/l.svg
                  primaryColor: #1a2b3c
                  locked: [logoUrl, favicon]
                portalDomains: erp.example
                origins: [{a: b}]
                issuers: [https://id.example]
                colour: blue
              - id: contoso
                parent: northwind
              - just-a-string
            """
        let issues = Self.treeIssues(of: yaml).sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }

        let expected: [(path: String, line: Int, column: Int, mentioning: String)] = [
            ("catalog.features[1]", 2, 22, "expected a single value"),
            ("catalog.packages.starter", 4, 14, "expected a list"),
            ("catalog.routes[0]", 6, 7, "missing required key 'path'"),
            ("catalog.routes[1].cost", 8, 13, "between 1 and 1000, got 0"),
            ("catalog.routes[2].cost", 10, 13, "expected a whole number, got 'cheap'"),
            ("catalog.routes[2].weight", 11, 7, "unknown key 'weight'"),
            ("catalog.plans", 12, 3, "unknown key 'plans'"),
            ("tenants[0]", 14, 5, "missing required key 'id'"),
            ("tenants[1].kind", 16, 11, "must be one of 'oem', 'partner', 'customer', got 'reseller'"),
            ("tenants[1].status", 17, 13, "must be one of 'active', 'suspended', got 'paused'"),
            ("tenants[1].features", 18, 15, "expected a list"),
            ("tenants[2].limits.rate", 22, 20, "between 1 and 1000000000000, got 0"),
            ("tenants[2].limits.burst", 22, 30, "expected a whole number, got '1.5'"),
            ("tenants[2].limits.perDay", 22, 43, "got 1000000000001"),
            ("tenants[2].limits.perWeek", 22, 58, "unknown key 'perWeek'"),
            ("tenants[2].customerDefaults.concurrency", 23, 37, "got -1"),
            ("tenants[2].placement.tier", 24, 23, "must be one of 'pooled', 'dedicated', got 'shared'"),
            ("tenants[2].placement.zone", 24, 31, "unknown key 'zone'"),
            ("tenants[2].branding.logoURL", 26, 7, "unknown key 'logoURL'"),
            ("tenants[2].branding.primaryColor", 27, 20, "quote values that start with '#'"),
            ("tenants[2].branding.locked[1]", 28, 25, "got 'favicon'"),
            ("tenants[2].portalDomains", 29, 20, "expected a list"),
            ("tenants[2].origins[0]", 30, 15, "expected a single value"),
            ("tenants[2].issuers[0]", 31, 15, "expected a mapping"),  // an issuer is a mapping, not its iss
            ("tenants[2].colour", 32, 5, "unknown key 'colour'"),
            ("tenants[3]", 33, 5, "missing required key 'kind'"),
            ("tenants[4]", 35, 5, "expected a mapping"),
        ]
        XCTAssertEqual(issues.count, expected.count, issues.map(\.description).joined(separator: "\n"))
        for (issue, want) in zip(issues, expected) {
            XCTAssertEqual(issue.path, want.path, "\(issue)")
            XCTAssertEqual(issue.line, want.line, "\(issue)")
            XCTAssertEqual(issue.column, want.column, "\(issue)")
            XCTAssertTrue(issue.message.contains(want.mentioning), "'\(issue.message)' does not mention '\(want.mentioning)'")
        }
    }

    func testUnknownKeysAreReportedInEverySectionWithTheKeysKnownThere() {
        let yaml = """
            catalog:
              feature: [ledger]
              routes:
                - path: /v1
                  methods: [GET]
            tenants:
              - id: acme
                kind: oem
                limit: {rate: 1}
                limits: {rps: 1}
                placement: {cel: c}
                branding: {logo: x}
            tenant: []
            """
        let issues = Self.treeIssues(of: yaml).sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }
        let expected: [(path: String, line: Int, known: String)] = [
            ("catalog.feature", 2, "features, packages, routes"),
            ("catalog.routes[0].methods", 5, "cost, exposeHeaders, feature, masking, method, path, websocket"),
            ("tenants[0].limit", 9, "addOns, branding, customerDefaults, features, id, issuers, kind, limits, masking, origins, package, packages, parent, partnerIssuerSelfService, placement, portalDomains, residency, status, supportAccess"),
            ("tenants[0].limits.rps", 10, "burst, concurrency, perDay, perMonth, rate"),
            ("tenants[0].placement.cel", 11, "cell, region, tier"),
            ("tenants[0].branding.logo", 12, "accentColor, displayName, faviconUrl, locked, logoUrl, primaryColor, privacyUrl, supportEmail, supportUrl, termsUrl"),
            ("tenant", 13, "catalog, tenants"),
        ]
        XCTAssertEqual(issues.count, expected.count, issues.map(\.description).joined(separator: "\n"))
        for (issue, want) in zip(issues, expected) {
            assertIssue(issue, path: want.path, line: want.line, mentioning: "(known here: \(want.known))")
        }
    }

    func testMissingSectionsAreEachReported() {
        let issues = Self.treeIssues(of: "version: 1\n")
        XCTAssertEqual(issues.map(\.message).sorted(), [
            "missing required section 'catalog'",
            "missing required section 'tenants'",
            "unknown key 'version' (known here: catalog, tenants)",
        ])
    }

    func testAnEmptyTenantListIsRejected() {
        let yaml = "catalog: {features: [ledger]}\ntenants: []\n"
        let issues = Self.treeIssues(of: yaml)
        XCTAssertEqual(issues.count, 1, "\(issues)")
        assertIssue(issues.first, path: "tenants", line: 2, mentioning: "at least one tenant")
    }

    func testSectionsOfTheWrongTypeAreReported() {
        let yaml = "catalog: [ledger]\ntenants: {id: acme}\n"
        let issues = Self.treeIssues(of: yaml).sorted { ($0.line ?? 0) < ($1.line ?? 0) }
        XCTAssertEqual(issues.count, 2, "\(issues)")
        assertIssue(issues.first, path: "catalog", line: 1, mentioning: "expected a mapping")
        assertIssue(issues.last, path: "tenants", line: 2, mentioning: "expected a list")
    }

    func testNotYAMLAndEmptyDocumentsAreReported() {
        let broken = Self.treeIssues(of: "catalog: {features: [ledger]\n")
        XCTAssertEqual(broken.count, 1)
        XCTAssertTrue(broken.first?.message.hasPrefix("not valid YAML") ?? false, "\(broken)")
        XCTAssertNotNil(broken.first?.line)

        XCTAssertEqual(Self.treeIssues(of: "").map(\.message), ["the document is empty"])
    }

    func testUnreadableFileIsReportedAgainstItsPath() {
        let path = Self.packageRoot.appendingPathComponent("deploy/examples/no-such-tenants.yaml").path
        do {
            _ = try TenantTreeLoader.load(path: path, cells: [])
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.source, path)
            XCTAssertEqual(error.issues.count, 1)
            XCTAssertTrue(error.issues.first?.message.hasPrefix("cannot read the file") ?? false, "\(error)")
        }
    }

    // MARK: - `tenantTree` in the settings

    func testTenantTreeIsOptional() throws {
        XCTAssertNil(try SettingsLoader.parse(minimalSettingsYAML).tenantTreePath)
    }

    func testRelativeTenantTreeIsResolvedAgainstTheBaseDirectory() throws {
        func path(_ tenantTree: String, base: String?) throws -> String? {
            try SettingsLoader.parse(minimalSettingsYAML + "\ntenantTree: \(tenantTree)\n" + upstreamContextYAML, baseDirectory: base).tenantTreePath
        }
        XCTAssertEqual(try path("tenants.yaml", base: "/etc/erp-gateway"), "/etc/erp-gateway/tenants.yaml")
        XCTAssertEqual(try path("./trees/../tenants.yaml", base: "/etc/erp-gateway"), "/etc/erp-gateway/tenants.yaml")
        XCTAssertEqual(try path("../shared/tenants.yaml", base: "/etc/erp-gateway/"), "/etc/shared/tenants.yaml")
        XCTAssertEqual(try path("/srv/./trees/../tenants.yaml", base: "/etc/erp-gateway"), "/srv/tenants.yaml")
        XCTAssertEqual(try path("tenants.yaml", base: nil), "tenants.yaml", "without a base the path is kept as written")
    }

    func testLoadingASettingsFileResolvesTenantTreeNextToIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("conf"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let settingsFile = directory.appendingPathComponent("conf/gateway.yaml")
        try (minimalSettingsYAML + "\ntenantTree: ../tenants/tree.yaml\n" + upstreamContextYAML).write(to: settingsFile, atomically: true, encoding: .utf8)

        let settings = try SettingsLoader.load(path: settingsFile.path)

        XCTAssertEqual(settings.tenantTreePath, directory.appendingPathComponent("tenants/tree.yaml").standardizedFileURL.path)
    }

    func testTenantTreeMustBeAPath() {
        for value in ["", "~", "[a.yaml]", "''"] {
            let issues = rejectionIssues(of: minimalSettingsYAML + "\ntenantTree: \(value)")
            XCTAssertEqual(issues.count, 1, "\(value): \(issues)")
            XCTAssertEqual(issues.first?.path, "tenantTree", value)
            XCTAssertEqual(issues.first?.line, 10, value)
        }
    }

    // MARK: - Helpers

    private static func treeIssues(of yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [ConfigurationIssue] {
        do {
            let tree = try TenantTreeLoader.parse(yaml, source: "tenants.yaml", cells: Self.cells)
            XCTFail("expected the document to be rejected, got \(tree.nodes.count) nodes", file: file, line: line)
            return []
        } catch {
            XCTAssertEqual(error.source, "tenants.yaml", file: file, line: line)
            return error.issues
        }
    }

    /// The 1-based number of the first line containing `text` after line `after`.
    private static func line(in file: String, containing text: String, after: Int = 0) throws -> Int {
        let lines = file.split(separator: "\n", omittingEmptySubsequences: false)
        let index = try XCTUnwrap(lines.indices.first { $0 >= after && lines[$0].contains(text) }, "no line containing '\(text)'")
        return index + 1
    }
}
