import Foundation
import Hierarchy
import XCTest
@testable import GatewayConfig

/// `requires` of a catalog feature in the tree file: read with its position, written back so it
/// reads the same, and its mistakes located at their line.
final class FeatureRequirementsFileTests: XCTestCase {
    static let yaml = """
        catalog:
          features:
            - ledger
            - { name: payroll, requires: [ledger] }
            - name: reports
              requires: [ledger, payroll]
            - { name: crm }
          packages:
            pay: [ledger, payroll]
        tenants:
          - { id: acme, kind: oem }
        """

    func testRequiresAreReadWithTheirPositions() throws {
        let tree = try TenantTreeLoader.parse(Self.yaml, cells: [])

        XCTAssertEqual(tree.catalog.features, ["ledger", "payroll", "reports", "crm"])
        XCTAssertEqual(tree.catalog.requires, ["payroll": ["ledger"], "reports": ["ledger", "payroll"]])
        XCTAssertEqual(tree.catalog.locations["features[1]"]?.line, 4)
        XCTAssertEqual(tree.catalog.locations["features[2].requires"]?.line, 6)
    }

    func testTheWriterWritesRequiresBackSoTheyReadTheSame() throws {
        let document = try TenantTreeLoader.parseDocument(Self.yaml, cells: [])
        let text = TenantTreeWriter.yaml(document)
        let reread = try TenantTreeLoader.parseDocument(text, cells: [])

        XCTAssertTrue(reread.tree.catalog.declares(sameAs: document.tree.catalog), text)
        XCTAssertEqual(reread.tree.catalog.requires, document.tree.catalog.requires)
        XCTAssertEqual(TenantTreeWriter.yaml(reread), text, "writing is a fixed point")
        XCTAssertNoThrow(try TreeCompiler.compile(reread.tree))

        // A catalog without requirements keeps its one-line list.
        let plain = TenantTreeWriter.yaml(TenantTreeDocument(tree: TreeSource(catalog: CatalogSource(features: ["ledger", "crm"], packages: [], routes: []), nodes: [], cells: []), issuers: []))
        XCTAssertTrue(plain.contains("features: [ledger, crm]"), plain)
    }

    func testADeltaMadeOnAnotherCatalogsRequirementsIsRefused() throws {
        let document = try TenantTreeLoader.parseDocument(Self.yaml, cells: [])
        var other = document
        other.tree.catalog.requires["crm"] = ["ledger"]
        XCTAssertNil(TreeDelta.between(document, other, touching: []))
    }

    func testAMisshapenFeatureIsAShapeError() {
        let yaml = """
            catalog:
              features:
                - { requires: [ledger] }
                - { name: payroll, requires: ledger }
                - { name: crm, needs: [ledger] }
            tenants:
              - { id: acme, kind: oem }
            """
        do {
            _ = try TenantTreeLoader.parse(yaml, source: "tenants.yaml", cells: [])
            XCTFail("a misshapen feature was accepted")
        } catch {
            XCTAssertEqual(error.issues.map(\.path), ["catalog.features[0]", "catalog.features[1].requires", "catalog.features[2].needs"], "\(error.issues)")
            XCTAssertEqual(error.issues.map(\.line), [3, 4, 5])
        }
    }

    func testACompileErrorInRequiresCarriesItsLine() throws {
        let yaml = """
            catalog:
              features:
                - ledger
                - { name: payroll, requires: [ledger, hr] }
            tenants:
              - { id: acme, kind: oem }
            """
        let tree = try TenantTreeLoader.parse(yaml, cells: [])
        do {
            _ = try TreeCompiler.compile(tree)
            XCTFail("an unknown required feature was accepted")
        } catch {
            XCTAssertEqual(error.issues.map(\.description), ["catalog features[1].requires: unknown feature 'hr'"])
            XCTAssertEqual(error.issues.first?.location.line, 4)
        }
    }
}
