import JSONMasking
import XCTest
@testable import Hierarchy

/// Masking rules down the tree: compiled once into each node's masks, added to and never taken
/// away, support sessions always masked.
final class FieldMaskingTests: XCTestCase {
    private func route(_ snapshot: TenantSnapshot, _ method: String?, _ path: String) -> Route {
        snapshot.catalog.routes.all.first { $0.method == method && $0.pathPrefix == path }!
    }

    private func mask(_ snapshot: TenantSnapshot, _ node: String, _ method: String?, _ path: String, _ kind: RoleKind) -> FieldMask? {
        snapshot.policy(of: node)!.masking.mask(route: self.route(snapshot, method, path), for: kind)
    }

    /// Names and pointers of a mask, as one comparable value; nil when unmasked.
    private func fields(_ mask: FieldMask?) -> [String]? {
        mask.map { ($0.names.sorted() + $0.pointers).sorted() }
    }

    func testACatalogRouteMasksItsRolesForEveryTenantAndSupportSessionsAlways() throws {
        var catalog = Fixtures.catalog
        catalog.routes[4].masking = [MaskingRuleSource(fields: ["salary"], roles: ["viewer"], nonJSON: .pass)]
        let snapshot = try self.compile(Fixtures.chain().with(catalog: catalog))

        XCTAssertEqual(self.fields(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .named("viewer"))), ["salary"])
        XCTAssertEqual(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .named("viewer"))?.passesNonJSON, true)
        XCTAssertNil(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .named("editor")))
        XCTAssertNil(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .unnamed))
        let support = self.mask(snapshot, "contoso", "GET", "/v1/payroll", .support)
        XCTAssertEqual(self.fields(support), ["salary"])
        XCTAssertEqual(support?.passesNonJSON, false, "a support session never gets a non-JSON response unmasked")
        XCTAssertNil(self.mask(snapshot, "contoso", nil, "/v1/ledger", .support), "other routes are not masked")
        XCTAssertEqual(RoleKind(roleClaim: "support"), .support)
        XCTAssertEqual(RoleKind(roleClaim: nil), .unnamed)
        XCTAssertEqual(RoleKind(roleClaim: "default"), .unnamed)
    }

    func testAChildAddsMasksAndWidensTheRolesTheyApplyTo() throws {
        let source = Fixtures.chain(
            oem: { $0.masking = [MaskingRuleSource(route: "GET /v1/payroll", fields: ["/employees/*/salary"], roles: ["viewer"])] },
            partner: { $0.masking = [MaskingRuleSource(route: "/v1/payroll", fields: ["iban"])] },
            customer: { $0.masking = [MaskingRuleSource(route: "/v1/payroll", fields: ["/employees/*/salary"], roles: ["default"])] }
        )
        let snapshot = try self.compile(source)

        XCTAssertNil(self.mask(snapshot, "acme", "GET", "/v1/payroll", .unnamed))
        XCTAssertEqual(self.fields(self.mask(snapshot, "acme", "GET", "/v1/payroll", .named("viewer"))), ["/employees/*/salary"])
        XCTAssertEqual(self.fields(self.mask(snapshot, "northwind", "GET", "/v1/payroll", .unnamed)), ["iban"])
        XCTAssertEqual(self.fields(self.mask(snapshot, "northwind", "GET", "/v1/payroll", .named("viewer"))), ["/employees/*/salary", "iban"])
        // The customer widens the OEM's salary mask to tokens without a role.
        XCTAssertEqual(self.fields(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .unnamed)), ["/employees/*/salary", "iban"])
        XCTAssertEqual(self.fields(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .named("editor"))), ["iban"])
        XCTAssertEqual(self.fields(self.mask(snapshot, "contoso", "GET", "/v1/payroll", .support)), ["/employees/*/salary", "iban"])
    }

    func testAChildCannotUnmaskWhatAnAncestorMasks() throws {
        // The only ways a child could try: the same field for no role but support, and non-JSON
        // answers let through. Neither takes anything away; the tree compiles.
        let source = Fixtures.chain(
            oem: { $0.masking = [MaskingRuleSource(route: "GET /v1/payroll", fields: ["salary"])] },
            customer: { $0.masking = [MaskingRuleSource(route: "GET /v1/payroll", fields: ["salary"], roles: [], nonJSON: .pass)] }
        )
        let snapshot = try self.compile(source)

        for kind in [RoleKind.unnamed, .named("viewer"), .support] {
            let mask = self.mask(snapshot, "contoso", "GET", "/v1/payroll", kind)
            XCTAssertEqual(self.fields(mask), ["salary"], "\(kind)")
            XCTAssertEqual(mask?.passesNonJSON, false, "\(kind)")
        }
    }

    func testCustomersWithoutRulesShareTheirParentsMasks() throws {
        let source = Fixtures.chain(partner: { $0.masking = [MaskingRuleSource(route: "/v1/invoices", fields: ["iban"])] }, adding: [
            Fixtures.customer("fabrikam", under: "northwind")
        ])
        let snapshot = try self.compile(source)
        XCTAssertEqual(snapshot.policy(of: "fabrikam")!.masking, snapshot.policy(of: "northwind")!.masking)
        XCTAssertTrue(snapshot.policy(of: "acme")!.masking.isEmpty)
    }

    func testRulesAreChecked() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.masking = [MaskingRuleSource(route: "/v1/nothing", fields: ["a"])] }),
            node: Fixtures.customerPath, field: "masking[0].route", message: "no catalog route '/v1/nothing'"
        )
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.masking = [MaskingRuleSource(route: "DELETE /v1/payroll", fields: ["a"])] }),
            node: Fixtures.customerPath, field: "masking[0].route", message: "no catalog route"
        )
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.masking = [MaskingRuleSource(fields: ["a"])] }),
            node: Fixtures.customerPath, field: "masking[0].route", message: "names the catalog route"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.masking = [MaskingRuleSource(route: "/v1/invoices", fields: [])] }),
            node: Fixtures.partnerPath, field: "masking[0]", message: "at least one field"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.masking = [MaskingRuleSource(route: "/v1/invoices", fields: ["/a/~2"])] }),
            node: Fixtures.partnerPath, field: "masking[0]", message: "'~' must be followed by 0"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.masking = [MaskingRuleSource(route: "/v1/invoices", fields: ["a"], roles: ["two words"])] }),
            node: Fixtures.partnerPath, field: "masking[0]", message: "is not a role"
        )
        let socket = RouteSource(method: "GET", pathPrefix: "/v1/live", feature: nil, cost: 1, websocket: true)
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.masking = [MaskingRuleSource(route: "/v1/live", fields: ["a"])] }).with(route: socket),
            node: Fixtures.oemPath, field: "masking[0].route", message: "WebSocket route"
        )
        var masked = socket
        masked.masking = [MaskingRuleSource(fields: ["a"])]
        assertOnlyIssue(Fixtures.chain().with(route: masked), node: "catalog", field: "routes[6].masking", message: "WebSocket route")
    }

    func testAnIncrementalCompileGivesTheFullCompilesMasks() throws {
        let before = Fixtures.chain()
        let previous = try self.compile(before)
        var partner = before.nodes[1]
        partner.masking = [MaskingRuleSource(route: "GET /v1/payroll", fields: ["/employees/*/salary"], roles: ["viewer"])]
        var after = before
        after.nodes[1] = partner
        let incremental = try TreeCompiler.compile(after, reusing: previous, changed: [partner], removed: [])
        let full = try self.compile(after)
        XCTAssertEqual(incremental.servesSameTree(as: full), [])
        XCTAssertEqual(self.fields(self.mask(incremental, "contoso", "GET", "/v1/payroll", .named("viewer"))), ["/employees/*/salary"])
    }
}
