@testable import AdminAPI
import Hierarchy
import XCTest

/// The engine on a real compiled tree: authentication, visibility, optimistic concurrency and
/// every change judged by the tree compiler.
final class AdminEngineTests: XCTestCase {
    var tree: StoredTree!

    override func setUpWithError() throws {
        self.tree = try AdminFixture.tree()
    }

    func get(_ target: String, _ token: String?) -> AdminResponse? {
        AdminFixture.respond(AdminFixture.request("GET", target, token: token), tree: self.tree)
    }

    func etag(_ id: String) throws -> String {
        try XCTUnwrap(self.get("/admin/v1/nodes/\(id)", try AdminFixture.token("platform-admin", node: nil))?.header("etag"))
    }

    func testATokenMustNameARoleAndANodeOfThatRolesLevel() throws {
        XCTAssertEqual(self.get("/admin/v1/nodes/acme", nil)?.problemType, "urn:erp-gateway:problem:admin-token-missing")
        let refused = [
            try AdminFixture.token("oem-admin", node: "p1"),  // a partner, not an OEM
            try AdminFixture.token("partner-admin", node: "acme"),
            try AdminFixture.token("customer-admin", node: "p1"),
            try AdminFixture.token("oem-admin", node: nil),
            try AdminFixture.token("platform-admin", node: "acme"),
            try AdminFixture.token("root", node: "acme"),
            try AdminFixture.token("oem-admin", node: "nowhere"),
            try AdminFixture.token("oem-admin", node: "acme", issuer: "https://unknown.test"),
        ]
        for token in refused {
            let response = self.get("/admin/v1/nodes/acme", token)
            XCTAssertEqual(response?.status, 401)
            XCTAssertEqual(response?.problemType, "urn:erp-gateway:problem:admin-token-rejected")
        }
        XCTAssertEqual(self.get("/admin/v1/nodes/acme", try AdminFixture.token("oem-admin", node: "acme"))?.status, 200)
    }

    func testAnUnknownNodeAndAHiddenNodeAnswerIdentically() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let hidden = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p2", token: token, requestID: "same"), tree: self.tree))
        let unknown = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/nope", token: token, requestID: "same"), tree: self.tree))
        XCTAssertEqual(hidden.status, 404)
        XCTAssertEqual(hidden.status, unknown.status)
        XCTAssertEqual(hidden.body, unknown.body)
        XCTAssertEqual(hidden.headers.map(\.name), unknown.headers.map(\.name))
        // Writes too: the precondition is never looked at for a node the caller cannot see.
        let write = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("PATCH", "/admin/v1/nodes/p2", token: token, body: "{}", requestID: "same"), tree: self.tree))
        XCTAssertEqual(write.body, unknown.body)
    }

    func testReadsShowTheNodeAsStoredItsChildrenEffectivePolicyAndExplain() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let node = try XCTUnwrap(self.get("/admin/v1/nodes/c1", token))
        XCTAssertEqual(node.json?["package"], .string("basic"))
        XCTAssertEqual(node.json?["parent"], .string("p1"))
        XCTAssertNotNil(node.header("etag"))
        let children = try XCTUnwrap(self.get("/admin/v1/nodes/p1/children", token)?.json?["children"]?.array)
        XCTAssertEqual(children.compactMap { $0["id"]?.string }, ["c1", "c2"])
        let effective = try XCTUnwrap(self.get("/admin/v1/nodes/c1/effective", token)?.json)
        XCTAssertEqual(effective["path"], .string("acme/p1/c1"))
        XCTAssertEqual(effective["features"], .strings(["ledger"]))
        XCTAssertEqual(effective["branding"]?["termsUrl"], .string("https://acme.test/terms"))
        let explain = try XCTUnwrap(self.get("/admin/v1/nodes/c1/explain?attribute=feature.payroll", token)?.json)
        XCTAssertEqual(explain["subject"], .string("acme/p1/c1"))
        XCTAssertEqual(explain["steps"]?.array?.count, 3)
        XCTAssertEqual(self.get("/admin/v1/nodes/c1/explain", token)?.status, 400)
        XCTAssertEqual(self.get("/admin/v1/nodes/c1/explain?attribute=colour", token)?.status, 400)
    }

    func testWritesNeedTheCurrentETag() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let body = #"{"branding":{"displayName":"P1 Cloud"}}"#
        let missing = AdminFixture.respond(AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: token, body: body), tree: self.tree)
        XCTAssertEqual(missing?.status, 428)
        let stale = AdminFixture.respond(AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: "\"0000000000000000\"", body: body), tree: self.tree)
        XCTAssertEqual(stale?.status, 412)
        let commit = try XCTUnwrap(AdminFixture.commit(AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: body), tree: self.tree))
        XCTAssertEqual(commit.baseRevision, 1)
        XCTAssertEqual(commit.response.status, 200)
        XCTAssertNotEqual(commit.response.header("etag"), try self.etag("p1"), "the ETag changes with the node")
        let branding = commit.next.snapshot?.policy(try NodeID("c1"))?.branding.values
        XCTAssertEqual(branding?[.displayName], "P1 Cloud", "children inherit the new branding")
        XCTAssertEqual(commit.audit.actor, "alice")
        XCTAssertEqual(commit.audit.role, .partnerAdmin)
        XCTAssertEqual(commit.audit.node.description, "acme/p1")
        XCTAssertEqual(commit.audit.changes.map(\.field), ["branding"])
        XCTAssertEqual(commit.audit.requestID, "req-1")
        XCTAssertEqual(commit.oem, "acme")
        // The committed text reads back to the same tree.
        let reread = try AdminFixture.tree(revision: 2, text: commit.next.text)
        XCTAssertEqual(reread.snapshot?.policy(try NodeID("p1"))?.branding.values[.displayName], "P1 Cloud")
    }

    func patch(_ id: String, _ body: String, as token: String) throws -> AdminOutcome {
        AdminEngine.handle(
            AdminFixture.request("PATCH", "/admin/v1/nodes/\(id)", token: token, ifMatch: try self.etag(id), body: body), tree: self.tree, now: AdminFixture.now
        )
    }

    func problems(_ outcome: AdminOutcome, file: StaticString = #filePath, line: UInt = #line) -> (status: Int, errors: [JSONValue]) {
        guard case .respond(let response) = outcome else {
            XCTFail("expected a refusal", file: file, line: line)
            return (0, [])
        }
        return (response.status, response.json?["errors"]?.array ?? [])
    }

    func testAPartnerAdminCannotWidenUnlockOrClaimWhatIsTaken() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        // Limits above its own bound.
        let limits = self.problems(try self.patch("c1", #"{"limits":{"rate":500}}"#, as: token))
        XCTAssertEqual(limits.status, 422)
        XCTAssertEqual(limits.errors.first?["field"], .string("limits.rate"))
        XCTAssertEqual(limits.errors.first?["node"], .string("acme/p1/c1"))
        // A field its OEM locked.
        let locked = self.problems(try self.patch("c1", #"{"branding":{"termsUrl":"https://p1.test/terms"}}"#, as: token))
        XCTAssertEqual(locked.status, 422)
        XCTAssertEqual(locked.errors.first?["field"], .string("branding.termsUrl"))
        // A portal domain another OEM has: refused without naming the owner.
        let taken = self.problems(try self.patch("p1", #"{"portalDomains":["portal.p1.test","erp.globex.test"]}"#, as: token))
        XCTAssertEqual(taken.status, 422)
        XCTAssertEqual(taken.errors.count, 1)
        XCTAssertEqual(taken.errors.first?["node"], .string("acme/p1"))
        XCTAssertEqual(taken.errors.first?["message"], .string("'erp.globex.test' is already the portal domain of a node outside your subtree"))
        // Its own features: granted by its OEM, not by itself.
        let own = self.problems(try self.patch("p1", #"{"features":["ledger","payroll"]}"#, as: token))
        XCTAssertEqual(own.status, 403)
        // A customer's package beyond the partner's features adds nothing the partner lacks.
        guard case .commit(let commit) = try self.patch("c1", #"{"package":"full"}"#, as: token) else { return XCTFail("expected a commit") }
        XCTAssertEqual(commit.next.snapshot?.catalog.names(commit.next.snapshot!.policy(try NodeID("c1"))!.features), ["ledger"])
    }

    func testEveryErrorIsListedAndNothingOfAnInvalidChangeIsKept() throws {
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let outcome = try self.patch("p1", #"{"limits":{"rate":5000,"concurrency":0},"branding":{"primaryColor":"blue"},"status":"paused"}"#, as: token)
        let refused = self.problems(outcome)
        XCTAssertEqual(refused.status, 422)
        let fields = Set(refused.errors.compactMap { $0["field"]?.string })
        XCTAssertEqual(fields, ["limits.concurrency", "status"], "shape errors first; the compiler runs on a well-formed node")
        let compiled = self.problems(try self.patch("p1", #"{"limits":{"rate":5000},"branding":{"primaryColor":"blue"}}"#, as: token))
        XCTAssertEqual(Set(compiled.errors.compactMap { $0["field"]?.string }), ["limits.rate", "branding.primaryColor"])
        XCTAssertEqual(self.tree.revision, 1)
    }

    func testReadOnlyFieldsCannotBePatched() throws {
        let token = try AdminFixture.token("platform-admin", node: nil)
        let refused = self.problems(try self.patch("c1", #"{"parent":"p2","kind":"partner"}"#, as: token))
        XCTAssertEqual(refused.status, 422)
        XCTAssertEqual(Set(refused.errors.compactMap { $0["field"]?.string }), ["parent", "kind"])
    }

    func testCreateAndSoftDeleteACustomer() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let create = AdminFixture.request(
            "POST", "/admin/v1/nodes/p1/children", token: token, ifMatch: try self.etag("p1"), body: #"{"id":"c9","package":"basic","limits":{"rate":10}}"#
        )
        let created = try XCTUnwrap(AdminFixture.commit(create, tree: self.tree))
        XCTAssertEqual(created.response.status, 201)
        XCTAssertEqual(created.audit.action, .create)
        XCTAssertNotNil(created.next.snapshot?.customer(try NodeID("c9")))
        // A child's placement is the platform's.
        let placed = AdminFixture.request(
            "POST", "/admin/v1/nodes/p1/children", token: token, ifMatch: try self.etag("p1"), body: #"{"id":"c8","package":"basic","placement":{"cell":"pooled-eu"}}"#
        )
        XCTAssertEqual(AdminFixture.respond(placed, tree: self.tree)?.status, 403)
        // An id used anywhere in the tree is taken.
        let taken = AdminFixture.request("POST", "/admin/v1/nodes/p1/children", token: token, ifMatch: try self.etag("p1"), body: #"{"id":"g1","package":"basic"}"#)
        let refusal = try XCTUnwrap(AdminFixture.respond(taken, tree: self.tree))
        XCTAssertEqual(refusal.status, 422)
        XCTAssertFalse(refusal.body.contains("globex"), refusal.body)

        let delete = AdminFixture.request("DELETE", "/admin/v1/nodes/c2", token: token, ifMatch: try self.etag("c2"))
        let deleted = try XCTUnwrap(AdminFixture.commit(delete, tree: self.tree))
        XCTAssertEqual(deleted.response.status, 204)
        XCTAssertNil(deleted.next.snapshot?.policy(try NodeID("c2")))
        XCTAssertEqual(deleted.deleted?.id, "c2")
        // Its own node, and a node with children, are not deleted.
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("DELETE", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1")), tree: self.tree)?.status, 403)
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("DELETE", "/admin/v1/nodes/p1", token: oem, ifMatch: try self.etag("p1")), tree: self.tree)?.status, 409)
    }

    func testSuspendingAPartnerSuspendsItsCustomersAndOnlyAnAncestorMayDoIt() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        XCTAssertEqual(self.problems(try self.patch("p1", #"{"status":"suspended"}"#, as: partner)).status, 403)
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        guard case .commit(let commit) = try self.patch("p1", #"{"status":"suspended"}"#, as: oem) else { return XCTFail("expected a commit") }
        XCTAssertEqual(commit.next.snapshot?.policy(try NodeID("c1"))?.status, .suspended)
    }

    func testExportGivesTheSubtreeInTheFileFormat() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let export = try XCTUnwrap(self.get("/admin/v1/nodes/p1/subtree", token))
        XCTAssertEqual(export.header("content-type"), "application/yaml")
        XCTAssertTrue(export.body.contains("id: c1"))
        XCTAssertFalse(export.body.contains("id: p2"))
        XCTAssertFalse(export.body.contains("globex"))
    }

    func testAuditIsReadForTheTargetsSubtree() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        guard case .readAudit(let oem, let subtree, _) = AdminEngine.handle(
            AdminFixture.request("GET", "/admin/v1/nodes/p1/audit", token: token), tree: self.tree, now: AdminFixture.now
        ) else { return XCTFail("expected an audit read") }
        XCTAssertEqual(oem, "acme")
        XCTAssertEqual(subtree.description, "acme/p1")
        func record(_ path: String) -> AuditRecord {
            AuditRecord(time: 1, actor: "a", role: .oemAdmin, node: try! NodePath(parsing: path), action: .update, changes: [], requestID: "r")
        }
        let answer = AdminEngine.auditResponse([record("acme/p1/c1"), record("acme/p2"), record("acme"), record("acme/p1")], subtree: subtree)
        XCTAssertEqual(answer.json?["entries"]?.array?.compactMap { $0["node"]?.string }, ["acme/p1/c1", "acme/p1"])
    }
}

extension AdminEngineTests {
    func testADryRunValidatesLikeAChangeAndCommitsNothing() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let valid = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/c1?dryRun=true", token: token, ifMatch: try self.etag("c1"), body: #"{"limits":{"rate":50}}"#),
            tree: self.tree
        ))
        XCTAssertEqual(valid.status, 200, valid.body)
        XCTAssertEqual(valid.json?["dryRun"], .bool(true))
        XCTAssertEqual(valid.json?["changes"]?.array?.first?["field"], .string("limits"))
        XCTAssertEqual(valid.json?["node"]?["limits"]?["rate"], .integer(50))
        let invalid = AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/c1?dryRun=true", token: token, ifMatch: try self.etag("c1"), body: #"{"limits":{"rate":500}}"#),
            tree: self.tree
        )
        XCTAssertEqual(invalid?.status, 422)
        let create = AdminFixture.respond(
            AdminFixture.request("POST", "/admin/v1/nodes/p1/children?dryRun=true", token: token, ifMatch: try self.etag("p1"), body: #"{"id":"c5","package":"basic"}"#),
            tree: self.tree
        )
        XCTAssertEqual(create?.status, 200)
    }
}

extension AdminEngineTests {
    func revocation(_ id: String, _ body: String, as token: String) -> AdminOutcome {
        AdminEngine.handle(AdminFixture.request("POST", "/admin/v1/nodes/\(id)/revocations", token: token, body: body), tree: self.tree, now: AdminFixture.now)
    }

    func testEveryTokenOfACustomerIsRevokedByAnyAdminWhoSeesIt() throws {
        for (role, node) in [("customer-admin", "c1"), ("partner-admin", "p1"), ("oem-admin", "acme"), ("platform-admin", nil)] {
            guard case .revoke(let revocation) = self.revocation("c1", #"{"allTokens":true}"#, as: try AdminFixture.token(role, node: node)) else {
                return XCTFail("\(role) may revoke c1's tokens")
            }
            XCTAssertEqual(revocation.message, .tenant("c1", issuedBefore: AdminFixture.now, until: AdminFixture.now + 30 * 24 * 3600))
            XCTAssertEqual(revocation.audit.action, .revokeTokens)
            XCTAssertEqual(revocation.oem, "acme")
        }
        let sibling = self.revocation("c1", #"{"allTokens":true}"#, as: try AdminFixture.token("customer-admin", node: "c2"))
        guard case .respond(let hidden) = sibling else { return XCTFail("expected a refusal") }
        XCTAssertEqual(hidden.status, 404)
        guard case .respond(let partner) = self.revocation("p1", #"{"allTokens":true}"#, as: try AdminFixture.token("oem-admin", node: "acme")) else {
            return XCTFail("expected a refusal")
        }
        XCTAssertEqual(partner.status, 422, "tokens speak for customers")
    }

    func testOnlyThePlatformRevokesASingleTokenByItsID() throws {
        let body = #"{"jti":"session-1","expiresAt":1800000600}"#
        guard case .respond(let refused) = self.revocation("c1", body, as: try AdminFixture.token("oem-admin", node: "acme")) else { return XCTFail("expected a refusal") }
        XCTAssertEqual(refused.status, 403)
        guard case .revoke(let revocation) = self.revocation("c1", body, as: try AdminFixture.token("platform-admin", node: nil)) else { return XCTFail("expected a revocation") }
        XCTAssertEqual(revocation.message, .token(jwtID: "session-1", expiresAt: 1_800_000_600))
    }
}

extension AdminEngineTests {
    /// A real public key: the example OEM's.
    static var publicKey: String {
        (try? AdminDocumentationTests.text("deploy/examples/keys/acme-2026-09.public.pem")) ?? ""
    }

    func issuersBody(_ kids: [String], iss: String = "https://id.acme.test") -> String {
        let keys = kids.map { #"{"kid":"\#($0)","alg":"RS256","pem":\#(JSONValue.string(Self.publicKey).text)}"# }.joined(separator: ",")
        return #"{"issuers":[{"iss":"\#(iss)","audience":"erp-gateway","keys":[\#(keys)]}]}"#
    }

    func issuersETag(_ id: String, _ token: String) throws -> String {
        try XCTUnwrap(self.get("/admin/v1/nodes/\(id)/issuers", token)?.header("etag"))
    }

    func testAnOEMRegistersItsOwnIssuerAndRotatesItsKey() throws {
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let put = AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: try self.issuersETag("acme", oem), body: self.issuersBody(["k1"]))
        let commit = try XCTUnwrap(AdminFixture.commit(put, tree: self.tree))
        XCTAssertEqual(commit.next.document.issuers.map(\.issuer), ["https://id.acme.test"])
        XCTAssertEqual(commit.audit.changes.first?.field, "issuers")
        XCTAssertNotNil(commit.next.configuration.authentication)
        // Overlap: both keys, then the old one retired — each a write of the list.
        let rotated = try AdminFixture.tree(revision: 2, text: commit.next.text)
        let etag = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/acme/issuers", token: oem), tree: rotated)?.header("etag"))
        let overlap = try XCTUnwrap(AdminFixture.commit(
            AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: etag, body: self.issuersBody(["k1", "k2"])), tree: rotated
        ))
        XCTAssertEqual(overlap.next.document.issuers.first?.keys.map(\.kid), ["k1", "k2"])
    }

    func testIssuersAreNotForASiblingNorForAPartnerItselfAndBadKeysAreListed() throws {
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let sibling = AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/p2/issuers", token: partner, ifMatch: "*", body: self.issuersBody(["k1"])), tree: self.tree
        )
        XCTAssertEqual(sibling?.status, 404)
        let own = AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/p1/issuers", token: partner, ifMatch: "*", body: self.issuersBody(["k1"])), tree: self.tree
        )
        XCTAssertEqual(own?.status, 403)
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let broken = #"{"issuers":[{"iss":"https://id.p1.test","audience":"erp-gateway","keys":[{"kid":"k","alg":"ES256","pem":"not a key"},{"kid":"h","alg":"HS256","pem":"x"}]}]}"#
        let refused = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/p1/issuers", token: oem, ifMatch: "*", body: broken), tree: self.tree
        ))
        XCTAssertEqual(refused.status, 422, refused.body)
        XCTAssertEqual(refused.json?["errors"]?.array?.first?["field"], .string("issuers[0].keys[1]"))
        let unparsable = #"{"issuers":[{"iss":"https://id.p1.test","audience":"erp-gateway","keys":[{"kid":"k","alg":"ES256","pem":"not a key"}]}]}"#
        let keyError = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/p1/issuers", token: oem, ifMatch: "*", body: unparsable), tree: self.tree
        ))
        XCTAssertEqual(keyError.status, 422, keyError.body)
        XCTAssertEqual(keyError.json?["errors"]?.array?.first?["node"], .string("acme/p1"), keyError.body)
    }

    /// The fixture's tree with `partnerIssuerSelfService: true` on acme.
    func treeWithSelfService() throws -> StoredTree {
        let text = AdminFixture.treeYAML.replacingOccurrences(of: "    portalDomains: [erp.acme.test]\n", with: "    portalDomains: [erp.acme.test]\n    partnerIssuerSelfService: true\n")
        XCTAssertNotEqual(text, AdminFixture.treeYAML)
        return try AdminFixture.tree(text: text)
    }

    func testWhereItsOEMAllowsAPartnerAdminManagesItsOwnIssuersAndOnlyThose() throws {
        let tree = try self.treeWithSelfService()
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        let read = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p1/issuers", token: partner), tree: tree))
        XCTAssertEqual(read.status, 200)
        let etag = try XCTUnwrap(read.header("etag"))
        let put = AdminFixture.request("PUT", "/admin/v1/nodes/p1/issuers", token: partner, ifMatch: etag, body: self.issuersBody(["k1", "k2"], iss: "https://id.p1.test"))
        let commit = try XCTUnwrap(AdminFixture.commit(put, tree: tree))
        XCTAssertEqual(commit.next.document.issuers.map(\.node), ["p1"])
        XCTAssertEqual(commit.next.snapshot?.node(forIssuer: "https://id.p1.test")?.path.description, "acme/p1", "it speaks for the partner's subtree only")
        XCTAssertEqual(commit.audit.role, .partnerAdmin)
        // Never a sibling's (hidden), nor its customers' beyond the tree's rules.
        let sibling = AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/p2/issuers", token: partner, ifMatch: "*", body: self.issuersBody(["k1"], iss: "https://id.p2.test")), tree: tree
        )
        XCTAssertEqual(sibling?.status, 404)
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p2/issuers", token: partner), tree: tree)?.status, 404)
        // Under an OEM that does not allow it: visible, not the partner's.
        let globex = try AdminFixture.token("partner-admin", node: "gp")
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/gp/issuers", token: globex), tree: tree)?.status, 200)
        let refused = AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/gp/issuers", token: globex, ifMatch: "*", body: self.issuersBody(["k1"], iss: "https://id.gp.test")), tree: tree
        )
        XCTAssertEqual(refused?.status, 403)
        XCTAssertEqual(refused?.problemType, "urn:erp-gateway:problem:admin-action-forbidden")
        // Nor may the partner claim an issuer registered elsewhere: one `iss`, one node.
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let acmeIssuer = try XCTUnwrap(AdminFixture.commit(
            AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: "*", body: self.issuersBody(["k1"])), tree: tree
        ))
        let claimed = AdminFixture.respond(
            AdminFixture.request("PUT", "/admin/v1/nodes/p1/issuers", token: partner, ifMatch: "*", body: self.issuersBody(["k1"])),
            tree: try AdminFixture.tree(revision: 2, text: acmeIssuer.next.text)
        )
        XCTAssertEqual(claimed?.status, 422, claimed?.body ?? "")
    }

    func testTheOEMAdminSetsPartnerIssuerSelfServiceOnItsOwnNodeOnly() throws {
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let patch = AdminFixture.request("PATCH", "/admin/v1/nodes/acme", token: oem, ifMatch: try self.etag("acme"), body: #"{"partnerIssuerSelfService":true}"#)
        let commit = try XCTUnwrap(AdminFixture.commit(patch, tree: self.tree))
        XCTAssertEqual(commit.audit.changes.map(\.field), ["partnerIssuerSelfService"])
        XCTAssertEqual(commit.next.snapshot?.policy(try NodeID("p1"))?.partnerIssuerSelfService, true)
        // The partner's own admin may now write its issuers in the committed tree.
        let next = try AdminFixture.tree(revision: 2, text: commit.next.text)
        let partner = try AdminFixture.token("partner-admin", node: "p1")
        XCTAssertNotNil(AdminFixture.commit(
            AdminFixture.request("PUT", "/admin/v1/nodes/p1/issuers", token: partner, ifMatch: "*", body: self.issuersBody(["k1"], iss: "https://id.p1.test")), tree: next
        ))
        // A partner cannot grant it to itself; on a partner it is no setting at all.
        let own = AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: partner, ifMatch: try self.etag("p1"), body: #"{"partnerIssuerSelfService":true}"#), tree: self.tree
        )
        XCTAssertEqual(own?.status, 403)
        let platform = try AdminFixture.token("platform-admin", node: nil)
        let invalid = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/p1", token: platform, ifMatch: try self.etag("p1"), body: #"{"partnerIssuerSelfService":true}"#), tree: self.tree
        ))
        XCTAssertEqual(invalid.status, 422, invalid.body)
        XCTAssertEqual(invalid.json?["errors"]?.array?.first?["field"], .string("partnerIssuerSelfService"), invalid.body)
        XCTAssertEqual(invalid.json?["errors"]?.array?.first?["node"], .string("acme/p1"), invalid.body)
        let notABool = AdminFixture.respond(
            AdminFixture.request("PATCH", "/admin/v1/nodes/acme", token: oem, ifMatch: try self.etag("acme"), body: #"{"partnerIssuerSelfService":"yes"}"#), tree: self.tree
        )
        XCTAssertEqual(notABool?.status, 422)
        // Effective policy and explain show it on every node of the OEM.
        let effective = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/c1/effective", token: oem), tree: next))
        XCTAssertEqual(effective.json?["partnerIssuerSelfService"], .bool(true))
        let explain = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p1/explain?attribute=partnerIssuerSelfService", token: partner), tree: next))
        XCTAssertEqual(explain.json?["decidedBy"], .string("acme"), explain.body)
    }
}

extension AdminEngineTests {
    func apply(_ root: String, _ edit: (String) -> String, as token: String, etag: String? = nil, query: String = "") throws -> AdminOutcome {
        let exported = try XCTUnwrap(self.get("/admin/v1/nodes/\(root)/subtree", token))
        let request = AdminFixture.request(
            "PUT", "/admin/v1/nodes/\(root)/subtree\(query)", token: token, ifMatch: etag ?? exported.header("etag"), body: edit(exported.body)
        )
        return AdminEngine.handle(request, tree: self.tree, now: AdminFixture.now)
    }

    func testChildrenMayComeBeforeTheirParentsInAnAppliedDocument() throws {
        let token = try AdminFixture.token("oem-admin", node: "acme")
        let outcome = try self.apply("p1", { text in
            let parts = text.components(separatedBy: "- id: c1\n")
            return parts[0].replacingOccurrences(of: "tenants:\n", with: "tenants:\n- { id: c5, kind: customer, parent: p1, package: basic }\n") + "- id: c1\n" + parts[1]
        }, as: token)
        guard case .commit(let commit) = outcome else { return XCTFail("expected a commit, got \(outcome)") }
        XCTAssertNotNil(commit.next.snapshot?.customer(try NodeID("c5")))
    }

    func testAPartnerAppliesItsSubtreeAsAFile() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        let outcome = try self.apply("p1", { text in
            text.replacingOccurrences(of: "- id: c2\n  kind: customer\n  parent: p1\n  package: basic\n", with: "")
                .replacingOccurrences(of: "- id: c1\n  kind: customer\n  parent: p1\n  package: basic\n", with: """
                    - id: c1
                      kind: customer
                      parent: p1
                      package: basic
                      limits: { rate: 20 }
                    - { id: c9, kind: customer, parent: p1, package: basic }

                    """)
        }, as: token)
        guard case .commit(let commit) = outcome else { return XCTFail("expected a commit, got \(outcome)") }
        XCTAssertEqual(commit.audit.action, .apply)
        XCTAssertEqual(Set(commit.audit.changes.map(\.field)), ["acme/p1/c1 limits", "acme/p1/c9 id", "acme/p1/c9 kind", "acme/p1/c9 parent", "acme/p1/c9 package", "acme/p1/c2"])
        let snapshot = try XCTUnwrap(commit.next.snapshot)
        XCTAssertNotNil(snapshot.customer(try NodeID("c9")))
        XCTAssertNil(snapshot.policy(try NodeID("c2")))
        XCTAssertEqual(snapshot.customer(try NodeID("c1"))?.limits.first?.limits.ratePerSecond, 20)
        XCTAssertNotNil(snapshot.policy(try NodeID("g1")), "nothing outside the subtree changes")
        XCTAssertEqual(commit.next.document.tree.nodes.map(\.id), ["acme", "p1", "c1", "c9", "p2", "c3", "globex", "gp", "g1"])
    }

    func testAnApplyIsRefusedWhenStaleOutsideItsSubtreeBeyondItsRightsOrReadingFiles() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        func status(_ outcome: AdminOutcome) -> Int {
            if case .respond(let response) = outcome { return response.status }
            return 0
        }
        XCTAssertEqual(status(try self.apply("p1", { $0 + "- { id: c7, kind: customer, parent: p1, package: basic }\n" }, as: token, etag: "\"0\"")), 412)
        XCTAssertEqual(status(try self.apply("p1", { $0 + "- { id: c8, kind: customer, parent: p2, package: basic }\n" }, as: token)), 422)
        XCTAssertEqual(status(try self.apply("p1", { $0.replacingOccurrences(of: "features: [ledger]\n  limits", with: "features: [ledger, payroll]\n  limits") }, as: token)), 403)
        XCTAssertEqual(status(try self.apply("p1", { $0.replacingOccurrences(of: "basic: [ledger]", with: "basic: [ledger, crm]") }, as: token)), 422)
        let readsAFile = try self.apply("p1", { text in
            text.replacingOccurrences(of: "  portalDomains: [portal.p1.test]\n", with: """
                  portalDomains: [portal.p1.test]
                  issuers:
                  - iss: https://id.p1.test
                    audience: erp
                    keys: [{ kid: k, alg: RS256, pemFile: /etc/passwd }]

                """)
        }, as: token)
        guard case .respond(let refused) = readsAFile else { return XCTFail("expected a refusal") }
        XCTAssertEqual(refused.status, 422)
        XCTAssertEqual(refused.json?["errors"]?.array?.first?["field"], .string("pemFile"))
        // Anchors and aliases, which could make a small document huge when read, are refused.
        let aliased = try self.apply("p1", { $0.replacingOccurrences(of: "features: [ledger]\n", with: "features: &f [ledger]\n") + "- { id: c6, kind: customer, parent: p1, package: basic, addOns: *f }\n" }, as: token)
        guard case .respond(let anchors) = aliased else { return XCTFail("expected a refusal") }
        XCTAssertEqual(anchors.status, 422)
        XCTAssertTrue(anchors.body.contains("anchors"), anchors.body)
        XCTAssertFalse(AdminEngine.Context.usesAnchorsOrAliases("displayName: R&D Labs & Co, url: https://x.test/?a=1&b=2, note: 5 * 3"))
        // A dry run shows the change and commits nothing.
        let dryRun = try self.apply("p1", { $0.replacingOccurrences(of: "parent: p1\n  package: basic\n- id: c2", with: "parent: p1\n  package: basic\n  limits: { rate: 10 }\n- id: c2") }, as: token, query: "?dryRun=true")
        guard case .respond(let shown) = dryRun else { return XCTFail("a dry run commits nothing") }
        XCTAssertEqual(shown.json?["dryRun"], .bool(true), shown.body)
    }
}

extension AdminEngineTests {
    func testUsageIsReadForTheCustomersOfTheSubtree() throws {
        let token = try AdminFixture.token("partner-admin", node: "p1")
        guard case .readUsage(let customers, let day) = AdminEngine.handle(
            AdminFixture.request("GET", "/admin/v1/nodes/p1/usage?day=2026-11-27", token: token), tree: self.tree, now: AdminFixture.now
        ) else { return XCTFail("expected a usage read") }
        XCTAssertEqual(customers.map(\.description), ["acme/p1/c1", "acme/p1/c2"])
        XCTAssertEqual(day, "20261127")
        guard case .readUsage(_, let today) = AdminEngine.handle(
            AdminFixture.request("GET", "/admin/v1/nodes/c1/usage", token: token), tree: self.tree, now: AdminFixture.now
        ) else { return XCTFail("expected a usage read") }
        XCTAssertEqual(today, "20270115", "today (UTC) by default")
        for bad in ["2026-13-01", "26-11-27", "2026-11-2x", "yesterday"] {
            XCTAssertEqual(self.get("/admin/v1/nodes/p1/usage?day=\(bad)", token)?.status, 400, bad)
        }
        XCTAssertEqual(self.get("/admin/v1/nodes/p2/usage", token)?.status, 404)
    }
}

extension AdminEngineTests {
    func testEachAdminStartsFromItsOwnRootAndOnlyThePlatformCreatesOEMs() throws {
        func roots(_ role: String, _ node: String?) throws -> [String] {
            let response = self.get("/admin/v1/nodes", try AdminFixture.token(role, node: node))
            return response?.json?["nodes"]?.array?.compactMap { $0["id"]?.string } ?? []
        }
        XCTAssertEqual(try roots("platform-admin", nil), ["acme", "globex"])
        XCTAssertEqual(try roots("oem-admin", "acme"), ["acme"])
        XCTAssertEqual(try roots("partner-admin", "p1"), ["p1"])
        XCTAssertEqual(try roots("customer-admin", "c1"), ["c1"])

        let body = #"{"id":"initech","placement":{"tier":"pooled","region":"eu"},"branding":{"displayName":"Initech"}}"#
        let refused = AdminFixture.respond(AdminFixture.request("POST", "/admin/v1/nodes", token: try AdminFixture.token("oem-admin", node: "acme"), body: body), tree: self.tree)
        XCTAssertEqual(refused?.status, 403)
        let commit = try XCTUnwrap(AdminFixture.commit(AdminFixture.request("POST", "/admin/v1/nodes", token: try AdminFixture.token("platform-admin", node: nil), body: body), tree: self.tree))
        XCTAssertEqual(commit.response.status, 201)
        XCTAssertEqual(commit.oem, "initech")
        XCTAssertEqual(commit.next.snapshot?.policy(try NodeID("initech"))?.branding.values[.displayName], "Initech")
        let taken = AdminFixture.respond(AdminFixture.request("POST", "/admin/v1/nodes", token: try AdminFixture.token("platform-admin", node: nil), body: #"{"id":"acme"}"#), tree: self.tree)
        XCTAssertEqual(taken?.status, 422)
    }
}

extension AdminEngineTests {
    func testAnIssuerNamingItsIdentityProviderIsFetchedBeforeItIsJudgedAndNotAgainOnceUnchanged() throws {
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let body = #"{"issuers":[{"iss":"https://idp.acme.test","audience":"erp-gateway","jwksUri":"https://idp.acme.test/jwks","algorithms":["RS256","EdDSA"]}]}"#
        var put = AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: try self.issuersETag("acme", oem), body: body)
        guard case .fetchIssuerKeys(let fetches) = AdminEngine.handle(put, tree: self.tree, now: AdminFixture.now) else {
            return XCTFail("expected the provider to be fetched first")
        }
        XCTAssertEqual(fetches.map(\.field), ["issuers[0].jwksUri"])
        XCTAssertEqual(fetches.first?.issuer.algorithms, [.RS256, .EdDSA])
        // Fetched: judged and committed like any list; the stored tree names the provider.
        put.fetchedIssuerKeys = ["https://idp.acme.test": ["k1 (RS256)"]]
        let commit = try XCTUnwrap(AdminFixture.commit(put, tree: self.tree))
        XCTAssertEqual(commit.next.document.issuers.first?.keySource, .jwks("https://idp.acme.test/jwks"))
        XCTAssertEqual(commit.next.configuration.authentication?.fetchedIssuers.map(\.issuer), ["https://idp.acme.test"])
        XCTAssertTrue(commit.next.text.contains("jwksUri: https://idp.acme.test/jwks"), commit.next.text)

        // The same provider again: no fetch needed for a real write; a dry run fetches to show the keys.
        let stored = try AdminFixture.tree(revision: 2, text: commit.next.text)
        let etag = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/acme/issuers", token: oem), tree: stored)?.header("etag"))
        let again = AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: etag, body: body)
        guard case .respond(let unchanged) = AdminEngine.handle(again, tree: stored, now: AdminFixture.now) else { return XCTFail("expected an answer") }
        XCTAssertEqual(unchanged.status, 200)
        let dry = AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers?dryRun=true", token: oem, ifMatch: etag, body: body)
        guard case .fetchIssuerKeys = AdminEngine.handle(dry, tree: stored, now: AdminFixture.now) else { return XCTFail("a dry run fetches") }
    }

    func testAProviderIssuerMustBeHTTPSAndNameItsAlgorithms() throws {
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        for (body, field) in [
            (#"{"issuers":[{"iss":"https://i.test","audience":"a","jwksUri":"http://i.test/jwks","algorithms":["RS256"]}]}"#, "issuers[0].jwksUri"),
            (#"{"issuers":[{"iss":"https://i.test","audience":"a","discovery":"https://i.test/d"}]}"#, "issuers[0].algorithms"),
        ] {
            let refused = try XCTUnwrap(AdminFixture.respond(
                AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: "*", body: body), tree: self.tree
            ))
            XCTAssertEqual(refused.status, 422, refused.body)
            XCTAssertTrue(refused.body.contains(field), refused.body)
        }
    }
}
