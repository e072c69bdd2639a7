import Hierarchy
import XCTest
@testable import AdminAPI

/// Masking rules through the admin API: shown and accepted as the tree file writes them, kept by
/// changes to other fields, and changed only by an administrator above the node.
final class AdminMaskingTests: XCTestCase {
    private func tree() throws -> StoredTree {
        let text = AdminFixture.treeYAML.replacingOccurrences(
            of: "    portalDomains: [portal.p1.test]\n",
            with: "    portalDomains: [portal.p1.test]\n    masking:\n      - { route: /v1/ledger, fields: [iban], roles: [viewer] }\n"
        )
        XCTAssertNotEqual(text, AdminFixture.treeYAML)
        return try AdminFixture.tree(text: text)
    }

    private func etag(_ node: String, tree: StoredTree) throws -> String {
        let platform = try AdminFixture.token("platform-admin", node: nil)
        let read = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/\(node)", token: platform), tree: tree))
        return try XCTUnwrap(read.header("etag"))
    }

    func testAChangeToAnotherFieldKeepsTheNodesMasks() throws {
        let tree = try self.tree()
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let patch = AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: oem, ifMatch: try self.etag("p1", tree: tree), body: #"{"limits":{"rate":50}}"#)
        let commit = try XCTUnwrap(AdminFixture.commit(patch, tree: tree))
        XCTAssertEqual(commit.audit.changes.map(\.field), ["limits"])
        let node = try XCTUnwrap(commit.next.document.tree.nodes.first { $0.id == "p1" })
        XCTAssertEqual(node.masking, [MaskingRuleSource(route: "/v1/ledger", fields: ["iban"], roles: ["viewer"])])
        let ledger = try XCTUnwrap(commit.next.snapshot?.catalog.routes.all.first)
        XCTAssertNotNil(commit.next.snapshot?.policy(try NodeID("c1"))?.masking.mask(route: ledger, for: .named("viewer")))
    }

    func testMasksAreAddedFromAboveAndNotByTheNodesOwnAdmin() throws {
        let tree = try self.tree()
        let body = #"{"masking":[{"route":"/v1/ledger","fields":["iban","/accounts/*/balance"],"roles":["viewer","default"]}]}"#
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let commit = try XCTUnwrap(AdminFixture.commit(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: oem, ifMatch: try self.etag("p1", tree: tree), body: body), tree: tree
        ))
        XCTAssertEqual(commit.audit.changes.map(\.field), ["masking"])
        let ledger = try XCTUnwrap(commit.next.snapshot?.catalog.routes.all.first)
        XCTAssertEqual(commit.next.snapshot?.policy(try NodeID("c1"))?.masking.mask(route: ledger, for: .unnamed)?.pointers, ["/accounts/*/balance"])

        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let own = AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: partner, ifMatch: try self.etag("p1", tree: tree), body: #"{"masking":[]}"#), tree: tree
        )
        XCTAssertEqual(own?.status, 403, "a node's admin does not take its own masks away")

        let invalid = AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: oem, ifMatch: try self.etag("p1", tree: tree), body: #"{"masking":[{"route":"/v1/nowhere","fields":["a"]}]}"#),
            tree: tree
        )
        XCTAssertEqual(invalid?.status, 422, invalid?.body ?? "")
    }

    func testExplainShowsEachMaskAndTheNodeThatDeclaredIt() throws {
        let token = try AdminFixture.token("customer-admin", node: "c1")
        let response = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/c1/explain?attribute=masking", token: token), tree: try self.tree()))
        XCTAssertEqual(response.status, 200, response.body)
        let explain = try XCTUnwrap(response.json)
        XCTAssertEqual(explain["value"], .string("1 rule on 1 route"))
        XCTAssertEqual(explain["decidedBy"], .string("acme/p1"))
        XCTAssertEqual(explain["masks"], .array([.object([
            "route": .string("/v1/ledger"), "fields": .strings(["iban"]), "roles": .strings(["viewer"]), "nonJSON": .string("refuse"),
            "declaredBy": .string("acme/p1"),
        ])]))
    }
}
