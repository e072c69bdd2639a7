import AdminAPI
import Foundation
import GatewayConfig
import Hierarchy
import TokenAuth
import XCTest

/// A small tree under settings with an admin issuer (HMAC, inline secret), tokens for every
/// role, and requests run through the engine.
enum AdminFixture {
    static let secret = Array("admin-test-secret-admin-test-secret-0123".utf8)
    static let now: Int64 = 1_800_000_000

    static let settingsYAML = """
        listener: { port: 8080 }
        cells:
          - { id: pooled-eu, kind: pooled, region: eu, endpoints: [127.0.0.1:9101] }
        defaultCell: pooled-eu
        tenantTree: tenants.yaml
        upstreamContext:
          signingKeys:
            - id: ctx-test-1
              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
          activeKey: ctx-test-1
        redis: { url: "redis://127.0.0.1:6379/0" }
        admin:
          listener: { port: 8081 }
          issuers:
            - iss: https://admin.platform.test
              audience: erp-admin
              allowHMAC: true
              keys: [{ kid: admin-1, alg: HS256, secret: \(Data(secret).base64EncodedString()) }]

        """

    static let treeYAML = """
        catalog:
          features: [ledger, payroll, crm]
          packages:
            basic: [ledger]
            full: [ledger, payroll, crm]
          routes:
            - { path: /v1/ledger, feature: ledger }
        tenants:
          - id: acme
            kind: oem
            features: [ledger, payroll]
            limits: { rate: 1000 }
            placement: { tier: pooled, region: eu }
            branding: { displayName: Acme, termsUrl: "https://acme.test/terms", locked: [termsUrl] }
            portalDomains: [erp.acme.test]
          - id: p1
            kind: partner
            parent: acme
            features: [ledger]
            limits: { rate: 100 }
            portalDomains: [portal.p1.test]
          - { id: c1, kind: customer, parent: p1, package: basic }
          - { id: c2, kind: customer, parent: p1, package: basic }
          - { id: p2, kind: partner, parent: acme }
          - { id: c3, kind: customer, parent: p2, package: full }
          - { id: globex, kind: oem, placement: { tier: pooled, region: eu }, portalDomains: [erp.globex.test] }
          - { id: gp, kind: partner, parent: globex }
          - { id: g1, kind: customer, parent: gp, package: full }

        """

    static func tree(revision: Int64 = 1, text: String = treeYAML) throws -> StoredTree {
        let settings = try SettingsLoader.parse(settingsYAML, source: "gateway.yaml", baseDirectory: "/tmp")
        return try StoredTree.read(text: text, revision: revision, settings: settings, settingsPath: "/tmp/gateway.yaml")
    }

    static func token(_ role: String, node: String?, subject: String = "alice", issuer: String = "https://admin.platform.test") throws -> String {
        var claims: [String: ClaimValue] = [
            "iss": .string(issuer), "sub": .string(subject), "aud": "erp-admin", "exp": .integer(now + 300), "iat": .integer(now), "role": .string(role),
        ]
        if let node { claims["node"] = .string(node) }
        return try TokenMinter.mint(claims: claims, algorithm: .HS256, kid: "admin-1", secret: secret)
    }

    static func request(
        _ method: String, _ target: String, token: String?, ifMatch: String? = nil, body: String? = nil, requestID: String = "req-1"
    ) -> AdminRequest {
        var headers: [(name: String, value: String)] = []
        if let token { headers.append((name: "authorization", value: "Bearer \(token)")) }
        if let ifMatch { headers.append((name: "if-match", value: ifMatch)) }
        return AdminRequest(method: method, target: target, headers: headers, body: Array((body ?? "").utf8), requestID: requestID)
    }

    /// Runs a request that the engine answers itself (no store involved).
    static func respond(_ request: AdminRequest, tree: StoredTree, file: StaticString = #filePath, line: UInt = #line) -> AdminResponse? {
        guard case .respond(let response) = AdminEngine.handle(request, tree: tree, now: now) else {
            XCTFail("expected a direct answer", file: file, line: line)
            return nil
        }
        return response
    }

    /// Runs a write and expects a commit.
    static func commit(_ request: AdminRequest, tree: StoredTree, file: StaticString = #filePath, line: UInt = #line) -> AdminCommit? {
        switch AdminEngine.handle(request, tree: tree, now: now) {
        case .commit(let commit): return commit
        case .respond(let response):
            XCTFail("expected a commit, got \(response.status) \(response.body)", file: file, line: line)
            return nil
        case .readAudit, .revoke, .readUsage, .readHealth, .readCertificates, .changeCertificate, .fetchIssuerKeys, .supportGrant, .readSupportSessions:
            XCTFail("expected a commit", file: file, line: line)
            return nil
        }
    }
}

extension AdminResponse {
    var json: JSONValue? { JSONValue.parse(Array(self.body.utf8)) }
    func header(_ name: String) -> String? { self.headers.first { $0.name == name }?.value }
    var problemType: String? { self.json?["type"]?.string }
}
