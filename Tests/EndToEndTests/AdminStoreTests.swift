import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The admin store through real gateway processes on one real Redis: a change made on one node
/// is served by every node within a second, survives restarting them all, and is audited; the
/// file only seeds an empty store.
final class AdminStoreTests: AdminTestCase {
    var second: GatewayProcess?
    var secondAdminPort = 0

    override func tearDown() async throws {
        if let second = self.second {
            second.stop()
            if (self.testRun?.totalFailureCount ?? 0) > 0 { print("--- second gateway log ---\n\(second.log)") }
        }
        self.second = nil
        try await super.tearDown()
    }

    func startSecond() throws -> GatewayProcess {
        let gateway = try GatewayProcess(settings: self.adminSettings(adminPort: self.secondAdminPort), files: ["tenants.yaml": Self.tree])
        try waitUntilAccepting(port: self.secondAdminPort, process: gateway.process)
        return gateway
    }

    func portalName(_ port: Int, host: String = "portal.p1.test") throws -> String? {
        let response = try request(port: port, "GET", "/v1/branding", headers: [("Host", host)])
        return try response.json()["displayName"] as? String
    }

    func testABrandingChangeOnOneNodeIsServedByAnotherWithinASecondAndSurvivesRestarts() throws {
        self.secondAdminPort = try freePort()
        self.gateway = try self.startAdminGateway()
        self.second = try self.startSecond()
        let second = try XCTUnwrap(self.second)
        XCTAssertEqual(try self.portalName(second.port), "Acme ERP", "the partner inherits its OEM's name")

        let token = try self.token("partner-admin", "p1")
        let changed = try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"Northwind Cloud"}}"#)
        XCTAssertEqual(changed.status, 200, changed.text)
        let committedAt = Date()
        var seenAfter: Double?
        while Date().timeIntervalSince(committedAt) < 5 {
            if try self.portalName(second.port) == "Northwind Cloud" {
                seenAfter = Date().timeIntervalSince(committedAt)
                break
            }
            usleep(10_000)
        }
        let elapsed = try XCTUnwrap(seenAfter, "node 2 never served the change")
        print(String(format: "branding change served by node 2 after %.3f s", elapsed))
        XCTAssertLessThan(elapsed, 1.0, "a change reaches every node within a second")
        XCTAssertEqual(try self.portalName(self.port), "Northwind Cloud")

        // Restart both: the store, not the file, is the truth now.
        self.gateway.stop()
        second.stop()
        self.gateway = try self.startAdminGateway()
        self.second = try self.startSecond()
        XCTAssertEqual(try self.portalName(self.port), "Northwind Cloud")
        XCTAssertEqual(try self.portalName(self.second!.port), "Northwind Cloud")
        XCTAssertTrue(self.gateway.log.contains("tenant tree read from the admin store"), self.gateway.log)
    }

    func testAStaleETagIsRefusedAndNothingChanges() throws {
        self.gateway = try self.startAdminGateway()
        let token = try self.token("oem-admin", "acme")
        let before = try self.etag("p1")
        let first = try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: before, body: ##"{"branding":{"accentColor":"#112233"}}"##)
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertNotEqual(first.header("etag"), before)
        let stale = try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: before, body: ##"{"branding":{"accentColor":"#445566"}}"##)
        XCTAssertEqual(stale.status, 412, stale.text)
        let missing = try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, body: ##"{"branding":{"accentColor":"#445566"}}"##)
        XCTAssertEqual(missing.status, 428, missing.text)
        let node = try self.admin("GET", "/admin/v1/nodes/p1", token: token)
        XCTAssertEqual(((try node.json()["branding"]) as? [String: Any])?["accentColor"] as? String, "#112233")
        XCTAssertEqual(try self.redis.cli(["GET", "erp-admin-test:{admin}:revision"]).trimmingCharacters(in: .whitespacesAndNewlines), "2")
    }

    func testAnInvalidChangeListsEveryErrorAndChangesNothing() throws {
        self.gateway = try self.startAdminGateway()
        let token = try self.token("partner-admin", "p1")
        let response = try self.admin(
            "PATCH", "/admin/v1/nodes/c1", token: token, ifMatch: try self.etag("c1"),
            body: #"{"limits":{"rate":500},"branding":{"termsUrl":"https://p1.test/terms","primaryColor":"blue"}}"#
        )
        XCTAssertEqual(response.status, 422, response.text)
        XCTAssertEqual(response.header("content-type"), "application/problem+json")
        let errors = try XCTUnwrap(try response.json()["errors"] as? [[String: Any]])
        XCTAssertEqual(Set(errors.compactMap { $0["field"] as? String }), ["limits.rate", "branding.termsUrl", "branding.primaryColor"])
        XCTAssertTrue(errors.allSatisfy { $0["node"] as? String == "acme/p1/c1" })
        XCTAssertEqual(try self.redis.cli(["GET", "erp-admin-test:{admin}:revision"]).trimmingCharacters(in: .whitespacesAndNewlines), "1")
    }

    func testEveryChangeIsAuditedAndTheLogIsReadOnlyWithinTheReadersSubtree() throws {
        self.gateway = try self.startAdminGateway()
        let oem = try self.token("oem-admin", "acme")
        let p1 = try self.token("partner-admin", "p1")
        XCTAssertEqual(try self.admin("PATCH", "/admin/v1/nodes/p1", token: p1, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"P1"}}"#).status, 200)
        XCTAssertEqual(try self.admin("PATCH", "/admin/v1/nodes/p2", token: oem, ifMatch: try self.etag("p2"), body: #"{"status":"suspended"}"#).status, 200)
        let created = try self.admin("POST", "/admin/v1/nodes/p1/children", token: p1, ifMatch: try self.etag("p1"), body: #"{"id":"c7","package":"basic"}"#)
        XCTAssertEqual(created.status, 201, created.text)

        // The commands explain the tree the nodes serve: the store's, where c7 exists.
        let (status, output) = try runCommand(GatewayProcess.binary, ["explain", "--config", self.gateway.configPath, "--tenant", "c7", "--field", "status"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("acme/p1/c7"), output)
        // The notice naming the tree is a line of its own, before the explanation.
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertTrue(lines.first?.hasPrefix("the admin store's tree, revision ") == true, output)
        XCTAssertTrue(lines.dropFirst().first?.hasPrefix("status for ") == true, output)

        let all = try self.admin("GET", "/admin/v1/nodes/acme/audit", token: oem)
        let entries = try XCTUnwrap(try all.json()["entries"] as? [[String: Any]])
        XCTAssertEqual(entries.compactMap { $0["node"] as? String }, ["acme/p1/c7", "acme/p2", "acme/p1"], "newest first")
        XCTAssertEqual(entries.last?["actor"] as? String, "partner-admin-user")
        XCTAssertEqual(entries.last?["role"] as? String, "partner-admin")
        XCTAssertEqual(entries.last?["action"] as? String, "update")
        XCTAssertNotNil(entries.last?["requestId"] as? String)
        let change = try XCTUnwrap((entries.last?["changes"] as? [[String: Any]])?.first)
        XCTAssertEqual(change["field"] as? String, "branding")
        XCTAssertEqual((change["after"] as? [String: Any])?["displayName"] as? String, "P1")

        let partnerView = try self.admin("GET", "/admin/v1/nodes/p1/audit", token: p1)
        XCTAssertEqual((try partnerView.json()["entries"] as? [[String: Any]])?.compactMap { $0["node"] as? String }, ["acme/p1/c7", "acme/p1"])
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/acme/audit", token: p1).status, 404)
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/globex/audit", token: oem).status, 404)
        // Nothing in the API edits the log.
        XCTAssertEqual(try self.admin("DELETE", "/admin/v1/nodes/acme/audit", token: try self.token("platform-admin", nil)).status, 405)
    }

    func testADryRunChangesNothing() throws {
        self.gateway = try self.startAdminGateway()
        let token = try self.token("partner-admin", "p1")
        let etag = try self.etag("p1")
        let dryRun = try self.admin("PATCH", "/admin/v1/nodes/p1?dryRun=true", token: token, ifMatch: etag, body: #"{"branding":{"displayName":"Maybe"}}"#)
        XCTAssertEqual(dryRun.status, 200, dryRun.text)
        XCTAssertEqual(try dryRun.json()["dryRun"] as? Bool, true)
        XCTAssertEqual(try self.etag("p1"), etag)
        XCTAssertEqual(try self.portalName(self.port), "Acme ERP")
        XCTAssertEqual(try self.redis.cli(["GET", "erp-admin-test:{admin}:revision"]).trimmingCharacters(in: .whitespacesAndNewlines), "1")
        // A whole subtree document too.
        let export = try self.admin("GET", "/admin/v1/nodes/p1/subtree", token: token)
        let edited = export.text.replacingOccurrences(of: "rate: 100", with: "rate: 50")
        let oem = try self.token("oem-admin", "acme")
        let applied = try self.admin("PUT", "/admin/v1/nodes/p1/subtree?dryRun=true", token: oem, ifMatch: export.header("etag"), body: edited)
        XCTAssertEqual(applied.status, 200, applied.text)
        XCTAssertEqual(((try applied.json()["changes"]) as? [[String: Any]])?.first?["field"] as? String, "acme/p1 limits")
        XCTAssertEqual(try self.admin("GET", "/admin/v1/nodes/p1/subtree", token: token).text, export.text)
        XCTAssertEqual(try self.redis.cli(["GET", "erp-admin-test:{admin}:revision"]).trimmingCharacters(in: .whitespacesAndNewlines), "1")
        XCTAssertEqual(try self.redis.cli(["XLEN", "erp-admin-test:{admin}:audit:acme"]).trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }

    func testACustomerAdminRevokesItsTokensOnEveryNode() throws {
        self.secondAdminPort = try freePort()
        self.gateway = try self.startAdminGateway()
        self.second = try self.startSecond()
        let dataPlane = try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "c1")
        func status(_ port: Int) throws -> Int {
            try request(port: port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(dataPlane)")]).status
        }
        XCTAssertEqual(try status(self.second!.port), 200)
        // The request is metered: its partner's admin sees it in the subtree's usage of the day.
        var counted: Int?
        let metering = Date()
        while Date().timeIntervalSince(metering) < 5, counted != 1 {
            let usage = try self.admin("GET", "/admin/v1/nodes/p1/usage", token: try self.token("partner-admin", "p1"))
            XCTAssertEqual(usage.status, 200, usage.text)
            counted = ((try usage.json()["total"]) as? [String: Any])?["requests"] as? Int
            if counted != 1 { usleep(20_000) }
        }
        XCTAssertEqual(counted, 1)
        // A sibling's admin cannot; the customer's own can.
        XCTAssertEqual(try self.admin("POST", "/admin/v1/nodes/c1/revocations", token: try self.token("customer-admin", "c1b"), body: #"{"allTokens":true}"#).status, 404)
        let revoked = try self.admin("POST", "/admin/v1/nodes/c1/revocations", token: try self.token("customer-admin", "c1"), body: #"{"allTokens":true}"#)
        XCTAssertEqual(revoked.status, 202, revoked.text)
        let start = Date()
        var refused = false
        while Date().timeIntervalSince(start) < 5, !refused {
            refused = try status(self.second!.port) == 401
            if !refused { usleep(20_000) }
        }
        XCTAssertTrue(refused, "node 2 never refused the revoked customer's token")
        let audit = try self.admin("GET", "/admin/v1/nodes/c1/audit", token: try self.token("customer-admin", "c1"))
        XCTAssertEqual((try audit.json()["entries"] as? [[String: Any]])?.first?["action"] as? String, "revoke-tokens")
    }

    func testAnOEMOnboardsAndRotatesItsSigningKeyAndEveryNodeFollows() throws {
        self.secondAdminPort = try freePort()
        self.gateway = try self.startAdminGateway()
        self.second = try self.startSecond()
        let oem = try self.token("oem-admin", "acme")
        func key(_ kid: String, _ pair: TestIdentity.KeyPair) throws -> String {
            #"{"kid":"\#(kid)","alg":"RS256","pem":\#(jsonString(try String(contentsOfFile: pair.publicKey, encoding: .utf8)))}"#
        }
        func put(_ keys: [String]) throws {
            let etag = try XCTUnwrap(try self.admin("GET", "/admin/v1/nodes/acme/issuers", token: oem).header("etag"))
            let body = #"{"issuers":[{"iss":"https://id.acme.test","audience":"erp-gateway","keys":[\#(keys.joined(separator: ","))]}]}"#
            let response = try self.admin("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: etag, body: body)
            XCTAssertEqual(response.status, 200, response.text)
        }
        func mint(_ kid: String, _ pair: TestIdentity.KeyPair) throws -> String {
            try TestIdentity.mint(issuer: "https://id.acme.test", key: pair.privateKey, kid: kid, tenant: "c1")
        }
        /// Polls node 2 until the token gets `expected`; true if it did.
        func eventually(_ token: String, _ expected: Int) throws -> Bool {
            let start = Date()
            while Date().timeIntervalSince(start) < 5 {
                if try request(port: self.second!.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]).status == expected { return true }
                usleep(20_000)
            }
            return false
        }
        let old = try mint("acme-1", TestIdentity.acmeOld)
        let new = try mint("acme-2", TestIdentity.acmeNew)
        XCTAssertTrue(try eventually(old, 401), "no issuer yet")
        try put([try key("acme-1", TestIdentity.acmeOld)])
        XCTAssertTrue(try eventually(old, 200), "the onboarded key verifies on node 2")
        try put([try key("acme-1", TestIdentity.acmeOld), try key("acme-2", TestIdentity.acmeNew)])
        XCTAssertTrue(try eventually(new, 200), "both keys during the overlap")
        XCTAssertTrue(try eventually(old, 200))
        try put([try key("acme-2", TestIdentity.acmeNew)])
        XCTAssertTrue(try eventually(old, 401), "the retired key no longer verifies")
        XCTAssertTrue(try eventually(new, 200))
    }

    func testAStoreThatLostItsTreeGetsTheNewestBackNotTheFile() throws {
        self.gateway = try self.startAdminGateway()
        let token = try self.token("oem-admin", "acme")
        XCTAssertEqual(try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"Kept"}}"#).status, 200)
        _ = try self.redis.cli(["DEL", "erp-admin-test:{admin}:tree", "erp-admin-test:{admin}:revision"])
        let start = Date()
        var revision = ""
        while Date().timeIntervalSince(start) < 5, revision != "2" {
            usleep(50_000)
            revision = try self.redis.cli(["GET", "erp-admin-test:{admin}:revision"]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(revision, "2", self.gateway.log)
        XCTAssertTrue(try self.redis.cli(["GET", "erp-admin-test:{admin}:tree"]).contains("Kept"))
        XCTAssertEqual(try self.portalName(self.port), "Kept")
        XCTAssertEqual(try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"Next"}}"#).status, 200)
    }

    func testAfterAFailoverLostAChangeTheNodeServesTheStoresTreeAgain() throws {
        self.gateway = try self.startAdminGateway()
        let token = try self.token("oem-admin", "acme")
        // Each in one script: the node's poll must not see the store half copied.
        let replicate = "for _, key in ipairs(redis.call('KEYS', 'erp-admin-test:*')) do redis.call('COPY', key, 'replica:' .. key) end"
        let promote = """
            for _, key in ipairs(redis.call('KEYS', 'erp-admin-test:*')) do redis.call('DEL', key) end
            for _, key in ipairs(redis.call('KEYS', 'replica:*')) do redis.call('COPY', key, string.sub(key, 9)); redis.call('DEL', key) end
            """
        XCTAssertEqual(try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"Before"}}"#).status, 200)
        // A replica holding every key as it is now.
        _ = try self.redis.cli(["EVAL", replicate, "0"])
        XCTAssertEqual(try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"Lost"}}"#).status, 200)
        // The data plane installs the committed tree a moment after the write's answer.
        XCTAssertEqual(try self.servedPortalName(becoming: "Lost"), "Lost")
        // The primary dies before its replica has the change; the replica is promoted.
        _ = try self.redis.cli(["EVAL", promote, "0"])

        XCTAssertEqual(try self.servedPortalName(becoming: "Before"), "Before", "the node serves the store's tree again\n\(self.gateway.log)")
        XCTAssertTrue(self.gateway.waitForLog("admin store went back to revision 2"), self.gateway.log)
        let next = try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"Next"}}"#)
        XCTAssertEqual(next.status, 200, next.text)
        XCTAssertEqual(try self.servedPortalName(becoming: "Next"), "Next")
        XCTAssertEqual(try self.redis.cli(["GET", "erp-admin-test:{admin}:revision"]).trimmingCharacters(in: .whitespacesAndNewlines), "3")
    }

    /// The portal name the node serves, asked every 50 ms for at most 5 s until it is `expected`.
    func servedPortalName(becoming expected: String) throws -> String? {
        let start = Date()
        var served = try self.portalName(self.port)
        while Date().timeIntervalSince(start) < 5, served != expected {
            usleep(50_000)
            served = try self.portalName(self.port)
        }
        return served
    }

    func testTheFileOnlySeedsAnEmptyStore() throws {
        self.gateway = try self.startAdminGateway()
        XCTAssertEqual(try self.portalName(self.port, host: "erp.acme.test"), "Acme ERP")
        self.gateway.stop()
        // A changed file does not replace a stored tree.
        self.gateway = try self.startAdminGateway(tree: Self.tree.replacingOccurrences(of: "displayName: Acme ERP", with: "displayName: From The File"))
        XCTAssertEqual(try self.portalName(self.port, host: "erp.acme.test"), "Acme ERP")
    }
}
