import Hierarchy
import XCTest
@testable import GatewayConfig

/// Masking rules in the tree file: read with their shape checked, written back to the same rules.
final class MaskingTreeSyntaxTests: XCTestCase {
    private let cells = [GatewaySettings.Cell(id: "eu-1", kind: .pooled, region: "eu", endpoints: [])]

    private let text = """
        catalog:
          features: [hr]
          routes:
            - path: /v1/employees
              feature: hr
              masking:
                - fields: [/employees/*/salary, iban]
                  roles: [viewer, default]
                - fields: ["/employees/*/bank/~1code"]
                  nonJSON: pass
        tenants:
          - id: acme
            kind: oem
            placement: {cell: eu-1}
            masking:
              - route: GET /v1/employees
                fields: [birthDate]
          - id: northwind
            kind: partner
            parent: acme
            masking:
              - route: /v1/employees
                fields: [/manager/phone]
                roles: []
                nonJSON: refuse
        """

    func testRulesReadAndWriteBackUnchanged() throws {
        let document = try TenantTreeLoader.parseDocument(self.text, cells: self.cells)
        let route = document.tree.catalog.routes[0]
        XCTAssertEqual(route.masking, [
            MaskingRuleSource(fields: ["/employees/*/salary", "iban"], roles: ["viewer", "default"]),
            MaskingRuleSource(fields: ["/employees/*/bank/~1code"], nonJSON: .pass),
        ])
        XCTAssertEqual(document.tree.nodes[0].masking, [MaskingRuleSource(route: "GET /v1/employees", fields: ["birthDate"])])
        XCTAssertEqual(document.tree.nodes[1].masking, [MaskingRuleSource(route: "/v1/employees", fields: ["/manager/phone"], roles: [], nonJSON: .refuse)])

        let written = TenantTreeWriter.yaml(document)
        let reread = try TenantTreeLoader.parseDocument(written, cells: self.cells)
        XCTAssertEqual(reread.tree.catalog.routes, document.tree.catalog.routes)
        XCTAssertEqual(reread.tree.nodes.map(\.masking), document.tree.nodes.map(\.masking))
        XCTAssertEqual(TenantTreeWriter.yaml(reread), written, "writing is a fixed point")
        XCTAssertTrue(reread.tree.nodes[1].declares(sameAs: document.tree.nodes[1]))
    }

    func testTheShapeOfARuleIsChecked() {
        let broken = self.text
            .replacingOccurrences(of: "route: GET /v1/employees\n        fields: [birthDate]", with: "fields: [birthDate]\n        unmask: [salary]")
            .replacingOccurrences(of: "nonJSON: pass", with: "nonJSON: sometimes")
        XCTAssertThrowsError(try TenantTreeLoader.parseDocument(broken, cells: self.cells)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("unmask"), text)
            XCTAssertTrue(text.contains("missing required key 'route'"), text)
            XCTAssertTrue(text.contains("sometimes"), text)
        }
    }
}
