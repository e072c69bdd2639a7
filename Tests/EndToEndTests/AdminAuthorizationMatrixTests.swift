import Foundation
import XCTest

/// Every admin endpoint × every role × the caller's own node, a node below it, a sibling, its
/// parent and another OEM, through the real binary: allowed exactly where it should be, and a
/// refusal for a node outside the subtree is byte for byte the answer for a node that does not
/// exist.
final class AdminAuthorizationMatrixTests: AdminTestCase {
    enum Relation: String, CaseIterable { case own, below, sibling, parent, otherOEM }

    struct Role {
        let name: String
        let node: String?
        /// The target for each relation the role has.
        let targets: [Relation: String]
    }

    static let roles = [
        Role(name: "platform-admin", node: nil, targets: [.below: "p2"]),
        Role(name: "oem-admin", node: "acme", targets: [.own: "acme", .below: "p1", .sibling: "globex", .otherOEM: "gp"]),
        Role(name: "partner-admin", node: "p1", targets: [.own: "p1", .below: "c1b", .sibling: "p2", .parent: "acme", .otherOEM: "gp"]),
        Role(name: "customer-admin", node: "c1", targets: [.own: "c1", .sibling: "c1b", .parent: "p1", .otherOEM: "g1"]),
    ]

    enum Endpoint: String, CaseIterable {
        case getNode, children, effective, explain, audit, usage, export, issuers, patchBranding, patchLimits, replaceIssuers, applySubtree, createChild, revoke, delete
    }

    /// What each endpoint answers on a node the caller may see: own node or below.
    func expected(_ endpoint: Endpoint, _ relation: Relation, targetKind: String) -> Int {
        switch relation {
        case .sibling, .parent, .otherOEM: return 404
        case .own, .below: break
        }
        let below = relation == .below
        switch endpoint {
        case .getNode, .children, .effective, .explain, .audit, .usage, .export, .issuers: return 200
        case .applySubtree: return 200  // the export sent back unchanged: nothing to authorize
        // An OEM's own, or any node's below; customers register no issuers (the compiler says so).
        case .replaceIssuers: return !below && targetKind != "oem" ? 403 : (targetKind == "customer" ? 422 : 200)
        case .patchBranding: return 200
        case .patchLimits: return below ? 200 : 403
        case .createChild: return targetKind == "customer" ? 403 : 201
        case .revoke: return targetKind == "customer" ? 202 : 422
        // A node with children is not deleted; a customer (no children) is, soft.
        case .delete: return below ? (targetKind == "customer" ? 204 : 409) : 403
        }
    }

    var created = 0
    /// Requests sent so far: makes every limits change a real change.
    var checks = 0

    func send(_ endpoint: Endpoint, target: String, kind: String, token: String) throws -> RawHTTPConnection.Response {
        let base = "/admin/v1/nodes/\(target)"
        // The real ETag where the node exists, so only authorization decides; a made-up one elsewhere.
        let etag = (try? self.etagIfExists(target)) ?? "\"0000000000000000\""
        self.checks += 1
        switch endpoint {
        case .getNode: return try self.admin("GET", base, token: token)
        case .children: return try self.admin("GET", base + "/children", token: token)
        case .effective: return try self.admin("GET", base + "/effective", token: token)
        case .explain: return try self.admin("GET", base + "/explain?attribute=features", token: token)
        case .audit: return try self.admin("GET", base + "/audit", token: token)
        case .usage: return try self.admin("GET", base + "/usage", token: token)
        case .export: return try self.admin("GET", base + "/subtree", token: token)
        case .patchBranding: return try self.admin("PATCH", base, token: token, ifMatch: etag, body: #"{"branding":{"supportEmail":"help@example.test"}}"#)
        case .patchLimits: return try self.admin("PATCH", base, token: token, ifMatch: etag, body: #"{"limits":{"perDay":\#(1_000_000 - self.checks)}}"#)
        case .createChild:
            self.created += 1
            let body = kind == "oem" ? #"{"id":"new-partner-\#(self.created)"}"# : #"{"id":"new-customer-\#(self.created)","package":"basic"}"#
            return try self.admin("POST", base + "/children", token: token, ifMatch: etag, body: body)
        case .revoke: return try self.admin("POST", base + "/revocations", token: token, body: #"{"allTokens":true}"#)
        case .issuers: return try self.admin("GET", base + "/issuers", token: token)
        case .applySubtree:
            let export = try self.admin("GET", base + "/subtree", token: try self.token("platform-admin", nil))
            return try self.admin("PUT", base + "/subtree", token: token, ifMatch: export.header("etag") ?? "\"0\"", body: export.text)
        case .replaceIssuers:
            let pem = try String(contentsOfFile: TestIdentity.acmeOld.publicKey, encoding: .utf8)
            let body = #"{"issuers":[{"iss":"https://id.\#(target).matrix.test","audience":"erp-gateway","keys":[{"kid":"k1","alg":"RS256","pem":\#(jsonString(pem))}]}]}"#
            return try self.admin("PUT", base + "/issuers", token: token, ifMatch: "*", body: body)
        case .delete: return try self.admin("DELETE", base, token: token, ifMatch: etag)
        }
    }

    func etagIfExists(_ id: String) throws -> String? {
        let response = try self.admin("GET", "/admin/v1/nodes/\(id)", token: try self.token("platform-admin", nil))
        return response.status == 200 ? response.header("etag") : nil
    }

    /// The answer's shape without the request id, to compare two refusals.
    func shape(_ response: RawHTTPConnection.Response) throws -> String {
        var json = try response.json()
        json["requestId"] = nil
        let headers = response.headers.map { $0.0.lowercased() }.filter { $0 != "x-request-id" }.sorted()
        return "\(response.status) \(json.keys.sorted()) \(json["type"] ?? "") \(json["title"] ?? "") \(headers)"
    }

    func testEveryEndpointForEveryRoleAndRelation() throws {
        self.gateway = try self.startAdminGateway()
        let kinds = ["acme": "oem", "globex": "oem", "p1": "partner", "p2": "partner", "gp": "partner", "c1": "customer", "c1b": "customer", "g1": "customer"]
        var checked = 0
        for role in Self.roles {
            let token = try self.token(role.name, role.node)
            for relation in Relation.allCases {
                guard let target = role.targets[relation] else { continue }
                for endpoint in Endpoint.allCases {
                    let kind = kinds[target]!
                    let response = try self.send(endpoint, target: target, kind: kind, token: token)
                    let expected = self.expected(endpoint, relation, targetKind: kind)
                    XCTAssertEqual(response.status, expected, "\(role.name) \(endpoint) on \(relation) (\(target)): \(response.text)")
                    if expected == 404 {
                        // A node that does not exist answers exactly alike.
                        let unknown = try self.send(endpoint, target: "no-such-node", kind: kind, token: token)
                        XCTAssertEqual(try self.shape(response), try self.shape(unknown), "\(role.name) \(endpoint) on \(relation)")
                    }
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, 14 * Endpoint.allCases.count)
    }

    func testEachRoleListsOnlyItsRootAndOnlyThePlatformCreatesAnOEM() throws {
        self.gateway = try self.startAdminGateway()
        for role in Self.roles {
            let token = try self.token(role.name, role.node)
            let roots = try self.admin("GET", "/admin/v1/nodes", token: token)
            XCTAssertEqual(roots.status, 200, roots.text)
            let ids = ((try roots.json()["nodes"]) as? [[String: Any]])?.compactMap { $0["id"] as? String }
            XCTAssertEqual(ids, role.node.map { [$0] } ?? ["acme", "globex"], role.name)
            let created = try self.admin("POST", "/admin/v1/nodes", token: token, body: #"{"id":"oem-by-\#(role.name)"}"#)
            XCTAssertEqual(created.status, role.node == nil ? 201 : 403, "\(role.name): \(created.text)")
        }
    }

    func testTokensThatAreNotAdminTokensForTheirNodeAreRefused() throws {
        self.gateway = try self.startAdminGateway()
        for (role, node) in [("oem-admin", "p1"), ("partner-admin", "acme"), ("customer-admin", "p1"), ("platform-admin", "acme"), ("oem-admin", "no-such-node")] {
            let response = try self.admin("GET", "/admin/v1/nodes/acme", token: try self.token(role, node))
            try self.assertAdminProblem(response, status: 401, slug: "admin-token-rejected")
        }
        try self.assertAdminProblem(try self.admin("GET", "/admin/v1/nodes/acme", token: nil), status: 401, slug: "admin-token-missing")
        // A data-plane token is no admin token.
        let dataPlane = try self.admin("GET", "/admin/v1/nodes/acme", token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
        try self.assertAdminProblem(dataPlane, status: 401, slug: "admin-token-rejected")
        // Nor is the admin API on the data plane's port.
        let onDataPlane = try request(port: self.port, "GET", "/admin/v1/nodes/acme", headers: [("Authorization", "Bearer \(try self.token("platform-admin", nil))")])
        XCTAssertNotEqual(onDataPlane.status, 200)
    }

    func assertAdminProblem(_ response: RawHTTPConnection.Response, status: Int, slug: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(response.header("content-type"), "application/problem+json", file: file, line: line)
        let json = try response.json()
        XCTAssertEqual(json["type"] as? String, "urn:erp-gateway:problem:\(slug)", file: file, line: line)
        XCTAssertEqual(response.header("x-request-id"), json["requestId"] as? String, file: file, line: line)
    }
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text])
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
}
