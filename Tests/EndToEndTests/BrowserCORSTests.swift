import BrowserHarness
import Foundation
import XCTest

/// An OEM web app in headless Chromium calling ERP endpoints through the gateway with `fetch`
/// and a bearer token, from an origin the tenant registered and from one it did not.
final class BrowserCORSTests: BrowserTestCase {
    /// `fetch(gateway + path, { headers: { Authorization } })` → status, readable body or the
    /// browser's error.
    static let fetchPage = BrowserTestCase.page(
        """
        const params = new URLSearchParams(location.search);
        const init = { method: params.get('method') ?? 'GET', headers: { Authorization: 'Bearer ' + params.get('token') } };
        if (init.method === 'POST') { init.headers['Content-Type'] = 'application/json'; init.body = '{"amount":1}'; }
        try {
          const response = await fetch(gateway + params.get('path'), init);
          return { status: response.status, body: await response.text() };
        } catch (error) {
          return { error: String(error) };
        }
        """
    )

    func tree(origin: String) -> String {
        """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes:
            - { path: /v1/ledger, feature: ledger }
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            origins: [\(origin)]
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme }
          - { id: c1, kind: customer, parent: p1, package: basic }
        """
    }

    override func setUp() async throws {
        try await super.setUp()
        try await self.startPages(["/fetch.html": Self.fetchPage])
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(self.tree(origin: self.pages.origin), extra: "")
    }

    func fetchQuery(_ path: String, token: String, method: String = "GET") -> String {
        var components = URLComponents()
        components.queryItems = [
            URLQueryItem(name: "gateway", value: "http://127.0.0.1:\(self.port)"), URLQueryItem(name: "path", value: path),
            URLQueryItem(name: "token", value: token), URLQueryItem(name: "method", value: method),
        ]
        return "/fetch.html?\(components.percentEncodedQuery ?? "")"
    }

    func testRegisteredOriginReadsForwardedAnswersAndAnotherOriginReadsNothing() async throws {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")

        let get = try await self.open(self.fetchQuery("/v1/ledger", token: token))
        XCTAssertEqual(get["status"] as? Int, 200, "\(get)")
        XCTAssertTrue((get["body"] as? String ?? "").contains("/v1/ledger"), "\(get)")

        // A POST with a JSON body and Authorization needs a preflight first; both pass.
        let post = try await self.open(self.fetchQuery("/v1/ledger", token: token, method: "POST"))
        XCTAssertEqual(post["status"] as? Int, 200, "\(post)")

        // The same page from an origin nobody registered: the browser lets it read nothing.
        let foreign = try await self.open(self.fetchQuery("/v1/ledger", token: token), origin: self.pages.otherOrigin)
        XCTAssertNil(foreign["status"], "\(foreign)")
        XCTAssertEqual(foreign["error"] as? String, "TypeError: Failed to fetch", "\(foreign)")
    }
}
