import Foundation
import Hierarchy
import XCTest
@testable import GatewayConfig

/// What the admin store keeps is the tree file's format written back: it must read back to the
/// same tree, key material included, whatever the values look like.
final class TenantTreeWriterTests: XCTestCase {
    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func exampleDocument() throws -> (TenantTreeDocument, GatewaySettings) {
        let settings = try SettingsLoader.load(path: Self.packageRoot.appendingPathComponent("deploy/examples/gateway.yaml").path)
        return (try TenantTreeLoader.loadDocument(path: settings.tenantTreePath!, cells: settings.cells), settings)
    }

    func testTheExampleTreeReadsBackToTheSameTreeAndKeys() throws {
        let (document, settings) = try self.exampleDocument()
        let text = TenantTreeWriter.yaml(document)
        let reread = try TenantTreeLoader.parseDocument(text, source: "written", cells: settings.cells)
        XCTAssertEqual(TenantTreeWriter.yaml(reread), text, "writing is a fixed point")
        XCTAssertEqual(reread.tree.nodes.map(\.id), document.tree.nodes.map(\.id))
        for (written, original) in zip(reread.tree.nodes, document.tree.nodes) {
            XCTAssertEqual(written.branding, original.branding, written.id)
            XCTAssertEqual(written.limits, original.limits, written.id)
            XCTAssertEqual(written.customerDefaults, original.customerDefaults, written.id)
            XCTAssertEqual(written.placement, original.placement, written.id)
            XCTAssertEqual(written.features, original.features, written.id)
            XCTAssertEqual(written.packages, original.packages, written.id)
            XCTAssertEqual(written.package, original.package, written.id)
            XCTAssertEqual(written.addOns, original.addOns, written.id)
            XCTAssertEqual(written.residency, original.residency, written.id)
            XCTAssertEqual(written.origins, original.origins, written.id)
            XCTAssertEqual(written.portalDomains, original.portalDomains, written.id)
            XCTAssertEqual(written.status, original.status, written.id)
            XCTAssertEqual(written.issuers, original.issuers, written.id)
        }
        XCTAssertEqual(reread.tree.catalog.features, document.tree.catalog.features)
        XCTAssertEqual(reread.tree.catalog.packages, document.tree.catalog.packages)
        XCTAssertEqual(reread.tree.catalog.routes, document.tree.catalog.routes)
        XCTAssertEqual(reread.issuers.count, document.issuers.count)
        for (written, original) in zip(reread.issuers, document.issuers) {
            XCTAssertEqual(written.issuer, original.issuer)
            XCTAssertEqual(written.node, original.node)
            XCTAssertEqual(written.audience, original.audience)
            XCTAssertEqual(written.maxLifetime, original.maxLifetime)
            XCTAssertEqual(written.keys.map(\.kid), original.keys.map(\.kid))
            XCTAssertEqual(written.keys.map(\.material), original.keys.map(\.material), "key material is inline, not a file name")
            XCTAssertTrue(written.keys.allSatisfy { $0.file == nil })
        }
        XCTAssertNoThrow(try TreeCompiler.compile(reread.tree))
    }

    func testValuesThatLookLikeOtherTypesStayStrings() throws {
        let tree = TreeSource(
            catalog: CatalogSource(features: ["ledger"], packages: [], routes: []),
            nodes: [
                NodeSource(
                    id: "acme", kind: .oem,
                    branding: BrandingSource(values: [.displayName: "null", .supportEmail: "true", .primaryColor: "#123456", .supportUrl: "42", .accentColor: "~"])
                ),
            ],
            cells: []
        )
        let text = TenantTreeWriter.yaml(TenantTreeDocument(tree: tree, issuers: []))
        let reread = try TenantTreeLoader.parseDocument(text, cells: [])
        XCTAssertEqual(reread.tree.nodes.first?.branding?.values, tree.nodes.first?.branding?.values, text)
    }

    func testPartnerIssuerSelfServiceReadsBackAsWrittenAndNotWrittenStaysAbsent() throws {
        let yaml = """
            catalog: { features: [ledger] }
            tenants:
              - { id: acme, kind: oem, partnerIssuerSelfService: true }
              - { id: globex, kind: oem, partnerIssuerSelfService: false }
              - { id: initech, kind: oem }
            """
        let document = try TenantTreeLoader.parseDocument(yaml, cells: [])
        XCTAssertEqual(document.tree.nodes.map(\.partnerIssuerSelfService), [true, false, nil])
        let text = TenantTreeWriter.yaml(document)
        let reread = try TenantTreeLoader.parseDocument(text, source: "written", cells: [])
        XCTAssertEqual(reread.tree.nodes.map(\.partnerIssuerSelfService), [true, false, nil], text)
        XCTAssertEqual(TenantTreeWriter.yaml(reread), text, "writing is a fixed point")
        XCTAssertThrowsError(try TenantTreeLoader.parse("catalog: {}\ntenants: [{ id: acme, kind: oem, partnerIssuerSelfService: yes }]", cells: [])) { error in
            let issues = (error as? ConfigurationError)?.issues ?? []
            XCTAssertEqual(issues.map(\.path), ["tenants[0].partnerIssuerSelfService"], "\(issues)")
            XCTAssertTrue(issues.first?.message.contains("expected true or false") == true, "\(issues)")
        }
    }

    func testAnExportOfASubtreeKeepsTheCatalogAndOnlyThoseNodes() throws {
        let (document, _) = try self.exampleDocument()
        let text = TenantTreeWriter.yaml(document) { $0.id == "acme-soft" }
        XCTAssertTrue(text.contains("catalog:"))
        XCTAssertTrue(text.contains("id: acme-soft"))
        XCTAssertFalse(text.contains("id: northwind-it"))
    }
}
