import Foundation
import XCTest

/// What the real binary tells an administrator whose change it refuses, and what `check` lists
/// for a tree file: nodes outside the caller's subtree are never named, the caller's input is
/// quoted exactly as sent, no parser internals show, and every error comes in one run.
final class AdminMessagesTests: AdminTestCase {
    /// Another OEM, `sg`, whose id occurs inside values a partner of `acme` sends; its partner
    /// holds the portal domain `portal.sg-one.test`.
    static let treeWithSG = AdminTestCase.tree + """
          - { id: sg, kind: oem, placement: { tier: pooled, region: test } }
          - { id: sgp, kind: partner, parent: sg, portalDomains: [portal.sg-one.test] }

        """

    /// A PATCH with a fixed request id, so that two answers can be compared byte for byte.
    func patch(_ id: String, _ body: String, token: String) throws -> RawHTTPConnection.Response {
        try request(port: self.adminPort, "PATCH", "/admin/v1/nodes/\(id)", headers: [
            ("Connection", "close"), ("Authorization", "Bearer \(token)"), ("If-Match", try self.etag(id)), ("Content-Type", "application/json"),
            ("X-Request-Id", "probe-1"),
        ], body: body)
    }

    func errors(_ response: RawHTTPConnection.Response) throws -> [[String: String]] {
        ((try response.json()["errors"]) as? [[String: String]]) ?? []
    }

    func testRefusalsQuoteTheCallersInputAndNameNothingOutsideItsSubtree() throws {
        self.gateway = try self.startAdminGateway(tree: Self.treeWithSG)
        let partner = try self.token("partner-admin", "p1")
        var before: [String: RawHTTPConnection.Response] = [:]
        for package in ["sg", "msgs"] {
            let response = try self.patch("c1", #"{"package":"\#(package)"}"#, token: partner)
            XCTAssertEqual(response.status, 422, response.text)
            XCTAssertEqual(try self.errors(response), [["node": "acme/p1/c1", "field": "package", "message": "unknown package '\(package)'"]])
            before[package] = response
        }

        let taken = try self.patch("p1", #"{"portalDomains":["portal.p1.test","portal.sg-one.test"]}"#, token: partner)
        XCTAssertEqual(taken.status, 422, taken.text)
        XCTAssertEqual(try self.errors(taken), [[
            "node": "acme/p1", "field": "portalDomains", "message": "'portal.sg-one.test' is already the portal domain of a node outside your subtree",
        ]])

        // No existence oracle: once `sg` is gone, the same requests get the same bytes.
        let platform = try self.token("platform-admin", nil)
        for id in ["sgp", "sg"] {
            let deleted = try self.admin("DELETE", "/admin/v1/nodes/\(id)", token: platform, ifMatch: try self.etag(id))
            XCTAssertEqual(deleted.status, 204, deleted.text)
        }
        try self.waitUntil { try self.admin("GET", "/admin/v1/nodes/sg", token: platform).status == 404 }
        for package in ["sg", "msgs"] {
            let after = try self.patch("c1", #"{"package":"\#(package)"}"#, token: partner)
            XCTAssertEqual(after.status, before[package]?.status)
            XCTAssertEqual(after.text, before[package]?.text, package)
            XCTAssertEqual(after.headers.map { $0.name.lowercased() }.sorted(), before[package]?.headers.map { $0.name.lowercased() }.sorted())
        }
    }

    func testADeeplyNestedDocumentIsRefusedWithoutParserInternals() throws {
        self.gateway = try self.startAdminGateway()
        let partner = try self.token("partner-admin", "p1")
        let export = try self.admin("GET", "/admin/v1/nodes/p1/subtree", token: partner)
        let body = "catalog: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n"
        let response = try self.admin("PUT", "/admin/v1/nodes/p1/subtree", token: partner, ifMatch: export.header("etag"), body: body)
        XCTAssertEqual(response.status, 422, response.text)
        let message = try XCTUnwrap(try self.errors(response).first?["message"])
        XCTAssertTrue(message.hasPrefix("not valid YAML: the document nests deeper than 1000 levels (line 1, column "), message)
        XCTAssertFalse(response.text.contains("yaml_"), response.text)
    }

    func testADryRunThatChangesNothingIsStillADryRun() throws {
        self.gateway = try self.startAdminGateway()
        let partner = try self.token("partner-admin", "p1")
        let response = try self.admin("PATCH", "/admin/v1/nodes/c1?dryRun=true", token: partner, ifMatch: try self.etag("c1"), body: #"{"package":"basic"}"#)
        XCTAssertEqual(response.status, 200, response.text)
        let json = try response.json()
        XCTAssertEqual(json["dryRun"] as? Bool, true, response.text)
        XCTAssertEqual((json["changes"] as? [Any])?.count, 0)
        XCTAssertEqual((json["node"] as? [String: Any])?["id"] as? String, "c1")
    }

    func testCheckListsEveryErrorOfATreeWithOrphansInOneRun() throws {
        let (directory, settings) = try treeFileDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let tree = """
            catalog:
              features: [ledger]
              packages:
                basic: [ledger]
              routes:
                - { path: /v1/ledger, feature: ledger }
            tenants:
              - { id: acme, kind: oem, placement: { tier: pooled, region: test }, branding: { supportEmail: nobody } }
              - id: northwind
                kind: partner
                parent: acmee
                branding: { logoUrl: "http://cdn.northwind.example/logo.svg" }
              - { id: contoso, kind: customer, parent: northwind, package: basic, branding: { primaryColor: blue } }

            """
        try tree.write(to: directory.appendingPathComponent("tenants.yaml"), atomically: true, encoding: .utf8)
        let (status, output) = try runCommand(GatewayProcess.binary, ["check", "--config", settings.path])
        XCTAssertEqual(status, 2, output)
        for line in [
            "acme branding.supportEmail: must be an e-mail address",
            "northwind parent: unknown parent 'acmee'",
            "northwind branding.logoUrl: must be an https:// URL",
            "contoso branding.primaryColor: must be a hex colour",
            "4 errors",
        ] {
            XCTAssertTrue(output.contains(line), "missing '\(line)' in:\n\(output)")
        }
    }

    func waitUntil(_ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        XCTFail("the condition did not hold within 5 s")
    }
}
