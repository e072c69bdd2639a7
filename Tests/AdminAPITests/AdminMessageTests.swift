@testable import AdminAPI
import Hierarchy
import XCTest

/// What a rejected change tells its caller: nodes outside the caller's subtree are never named,
/// the caller's own input is quoted exactly as sent, parsers' internals never show, and an answer
/// does not depend on whether some node outside the subtree exists.
final class AdminMessageTests: XCTestCase {
    /// The fixture with one more OEM, `sg`, whose id occurs inside values a partner of `acme` may
    /// send (`msgs`, `portal.sg-one.test`). Its partner holds that portal domain.
    static let treeWithSG = AdminFixture.treeYAML + """
          - { id: sg, kind: oem, placement: { tier: pooled, region: eu }, portalDomains: [erp.sg.test] }
          - { id: sgp, kind: partner, parent: sg, portalDomains: [portal.sg-one.test] }

        """

    var tree: StoredTree!

    override func setUpWithError() throws {
        self.tree = try AdminFixture.tree(text: Self.treeWithSG)
    }

    func etag(_ id: String, in tree: StoredTree) throws -> String {
        let response = AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/\(id)", token: try AdminFixture.token("platform-admin", node: nil)), tree: tree)
        return try XCTUnwrap(response?.header("etag"))
    }

    /// A PATCH's refusal, with a fixed request id so two answers can be compared byte for byte.
    func refusal(_ id: String, _ body: String, as token: String, in tree: StoredTree? = nil) throws -> AdminResponse {
        let tree = tree ?? self.tree!
        let request = AdminFixture.request("PATCH", "/admin/v1/nodes/\(id)", token: token, ifMatch: try self.etag(id, in: tree), body: body, requestID: "probe")
        let response = try XCTUnwrap(AdminFixture.respond(request, tree: tree))
        XCTAssertEqual(response.status, 422, response.body)
        return response
    }

    func errors(_ response: AdminResponse) -> [[String: String]] {
        (response.json?["errors"]?.array ?? []).map { error in
            ["node": error["node"]?.string ?? "", "field": error["field"]?.string ?? "", "message": error["message"]?.string ?? ""]
        }
    }

    func testAValueContainingAnotherOEMsIdIsQuotedAsSent() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        for package in ["sg", "msgs"] {
            let response = try self.refusal("c1", #"{"package":"\#(package)"}"#, as: partner)
            XCTAssertEqual(self.errors(response), [["node": "acme/p1/c1", "field": "package", "message": "unknown package '\(package)'"]])
        }
    }

    func testARefusalIsTheSameWhetherOrNotANodeOutsideTheSubtreeExists() throws {
        let without = try AdminFixture.tree()
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        for body in [#"{"package":"sg"}"#, #"{"package":"msgs"}"#, #"{"package":"sgp","limits":{"rate":500}}"#] {
            let existing = try self.refusal("c1", body, as: partner)
            let absent = try self.refusal("c1", body, as: partner, in: without)
            XCTAssertEqual(existing.body, absent.body, body)
            XCTAssertEqual(existing.headers.map(\.name), absent.headers.map(\.name))
            XCTAssertEqual(existing.headers.map(\.value), absent.headers.map(\.value))
        }
    }

    func testAPortalDomainTakenOutsideTheSubtreeIsRefusedOnTheCallersNodeWithoutNamingTheHolder() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        // Held by a partner of `sg`, which the compiler resolves after `p1`; and by `sg` itself,
        // which it resolves before.
        for domain in ["portal.sg-one.test", "erp.sg.test"] {
            let response = try self.refusal("p1", #"{"portalDomains":["portal.p1.test","\#(domain)"]}"#, as: partner)
            XCTAssertEqual(self.errors(response), [[
                "node": "acme/p1", "field": "portalDomains", "message": "'\(domain)' is already the portal domain of a node outside your subtree",
            ]])
            XCTAssertFalse(response.body.contains("sgp"), response.body)
        }
        // The platform sees the whole tree: it is told who holds the domain.
        let platform = try AdminFixture.token("platform-admin", node: nil)
        let told = try self.refusal("p1", #"{"portalDomains":["portal.sg-one.test"]}"#, as: platform)
        XCTAssertEqual(self.errors(told), [["node": "sg/sgp", "field": "portalDomains", "message": "'portal.sg-one.test' is already the portal domain of acme/p1"]])
    }

    func testAPortalDomainTakenInsideTheSubtreeNamesItsHolder() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let response = try self.refusal("c1", #"{"portalDomains":["portal.p1.test"]}"#, as: partner)
        XCTAssertEqual(self.errors(response), [["node": "acme/p1/c1", "field": "portalDomains", "message": "'portal.p1.test' is already the portal domain of acme/p1"]])
    }

    func testAnIdTakenOutsideTheSubtreeIsRefusedAsTheCallersInput() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let request = AdminFixture.request("POST", "/admin/v1/nodes/p1/children", token: partner, ifMatch: try self.etag("p1", in: self.tree), body: #"{"id":"sg","package":"basic"}"#)
        let response = try XCTUnwrap(AdminFixture.respond(request, tree: self.tree))
        XCTAssertEqual(response.status, 422)
        XCTAssertEqual(self.errors(response), [["node": "sg", "field": "id", "message": "id 'sg' is used by another node; ids are unique in the whole tree"]])
        XCTAssertFalse(response.body.contains("outside"), "the id is the caller's own input: \(response.body)")
    }

    func testADeeplyNestedDocumentIsRefusedInOurWords() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let export = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p1/subtree", token: partner), tree: self.tree))
        for body in [
            "catalog: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n",
            (0..<1200).map { String(repeating: " ", count: $0) + "k\($0):\n" }.joined() + String(repeating: " ", count: 1200) + "v\n",
        ] {
            let request = AdminFixture.request("PUT", "/admin/v1/nodes/p1/subtree", token: partner, ifMatch: export.header("etag"), body: body)
            let response = try XCTUnwrap(AdminFixture.respond(request, tree: self.tree))
            XCTAssertEqual(response.status, 422, response.body)
            let message = try XCTUnwrap(self.errors(response).first?["message"])
            XCTAssertTrue(message.hasPrefix("not valid YAML: the document nests deeper than 1000 levels (line "), message)
            XCTAssertFalse(response.body.contains("yaml_"), response.body)
            XCTAssertFalse(response.body.contains("()"), response.body)
        }
        // Any other syntax error: where it is, in the document the caller sent.
        let broken = AdminFixture.request("PUT", "/admin/v1/nodes/p1/subtree", token: partner, ifMatch: export.header("etag"), body: "catalog: [ledger\n")
        let message = try XCTUnwrap(self.errors(try XCTUnwrap(AdminFixture.respond(broken, tree: self.tree))).first?["message"])
        XCTAssertTrue(message.hasPrefix("not valid YAML: ") && message.contains("(line 2, column "), message)
    }

    func testADryRunOfAChangeThatChangesNothingAnswersLikeEveryDryRun() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let same = AdminFixture.request("PATCH", "/admin/v1/nodes/c1?dryRun=true", token: partner, ifMatch: try self.etag("c1", in: self.tree), body: #"{"package":"basic"}"#)
        let response = try XCTUnwrap(AdminFixture.respond(same, tree: self.tree))
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(response.json?["dryRun"], .bool(true))
        XCTAssertEqual(response.json?["changes"], .array([]))
        XCTAssertEqual(response.json?["node"]?["package"], .string("basic"))
        XCTAssertEqual(response.json?["revision"], .integer(1))
        // The issuers list and a subtree sent back unchanged, too.
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let issuers = AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers?dryRun=true", token: oem, ifMatch: "*", body: #"{"issuers":[]}"#)
        let unchangedIssuers = try XCTUnwrap(AdminFixture.respond(issuers, tree: self.tree))
        XCTAssertEqual(unchangedIssuers.json?["dryRun"], .bool(true), unchangedIssuers.body)
        XCTAssertEqual(unchangedIssuers.json?["changes"], .array([]))
        let export = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p1/subtree", token: partner), tree: self.tree))
        let apply = AdminFixture.request("PUT", "/admin/v1/nodes/p1/subtree?dryRun=true", token: partner, ifMatch: export.header("etag"), body: export.body)
        let unchangedApply = try XCTUnwrap(AdminFixture.respond(apply, tree: self.tree))
        XCTAssertEqual(unchangedApply.json?["dryRun"], .bool(true), unchangedApply.body)
        XCTAssertEqual(unchangedApply.json?["changes"], .array([]))
        // Without dryRun: the node as stored, with its ETag, as before.
        let real = AdminFixture.request("PATCH", "/admin/v1/nodes/c1", token: partner, ifMatch: try self.etag("c1", in: self.tree), body: #"{"package":"basic"}"#)
        let plain = try XCTUnwrap(AdminFixture.respond(real, tree: self.tree))
        XCTAssertNil(plain.json?["dryRun"])
        XCTAssertEqual(plain.header("etag"), try self.etag("c1", in: self.tree))
    }

    func testAnIssueAboutANodeTheCallerCannotSeeIsToldWithoutItsValues() throws {
        let audience = ProblemAudience(scope: try NodePath(parsing: "acme/p1"), document: self.tree.document)
        let gp = IssueNode.path(try NodePath(parsing: "globex/gp"))
        let globex = IssueNode.path(try NodePath(parsing: "globex"))
        let p1 = IssueNode.path(try NodePath(parsing: "acme/p1"))
        // Between two nodes it cannot see: nothing of either.
        let elsewhere = TreeIssue(subject: gp, field: "portalDomains", text: "'portal.gp.test' is already the portal domain of \(node: globex)", counterpart: globex)
        XCTAssertEqual(audience.problem(elsewhere), FieldProblem(node: "(outside your subtree)", field: "portalDomains", message: "a node outside your subtree does not validate with this change"))
        // Shared with its own node: told there.
        let shared = TreeIssue(subject: gp, field: "issuers", text: "issuer 'https://id.test' is already registered on \(node: p1)", counterpart: p1)
        XCTAssertEqual(audience.problem(shared), FieldProblem(node: "acme/p1", field: "issuers", message: "issuer 'https://id.test' is already registered on a node outside your subtree"))
        // Its ancestors are on its own path; an id is seen where a node of that id is.
        let bound = TreeIssue(subject: .id("c1"), field: "limits.rate", text: "500 is above the 100 of \(node: .path(NodePath(oem: try NodeID("acme"))))")
        XCTAssertEqual(audience.problem(bound), FieldProblem(node: "c1", field: "limits.rate", message: "500 is above the 100 of acme"))
        XCTAssertEqual(audience.problem(TreeIssue(subject: .id("g1"), field: "id", text: "hidden")).node, "(outside your subtree)")
    }
}
