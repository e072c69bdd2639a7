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

    /// Runs every call of the `calls` parameter (`[name, path, token]`) with `fetch` and reports,
    /// by name, what the page could read: status, the problem's `type` and members, the exposed
    /// fields — or the browser's error.
    static let appPage = BrowserTestCase.page(
        """
        const calls = JSON.parse(new URLSearchParams(location.search).get('calls'));
        const results = {};
        for (const [name, path, token] of calls) {
          const init = token ? { headers: { Authorization: 'Bearer ' + token } } : {};
          try {
            const response = await fetch(gateway + path, init);
            const text = await response.text();
            let body = null;
            try { body = JSON.parse(text); } catch (error) {}
            results[name] = {
              status: response.status,
              type: body?.type ?? null,
              members: body && response.headers.get('Content-Type') === 'application/problem+json' ? Object.keys(body).sort() : null,
              displayName: body?.displayName ?? null,
              requestId: response.headers.get('X-Request-Id'),
              rateLimit: response.headers.get('RateLimit'),
              rateLimitPolicy: response.headers.get('RateLimit-Policy'),
              retryAfter: response.headers.get('Retry-After'),
              balance: response.headers.get('X-Ledger-Balance'),
            };
          } catch (error) {
            results[name] = { error: String(error) };
          }
        }
        return results;
        """
    )

    var redis: RedisProcess!

    override func setUp() async throws {
        try await super.setUp()
        try await self.startPages(["/fetch.html": Self.fetchPage, "/app.html": Self.appPage])
        try await self.startBackends(1)
        self.redis = try RedisProcess()
        // The tree and cells of the raw-HTTP CORS tests, with this page server as acme's app.
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: [], tenantTree: "tenants.yaml", cells: try CORSAnswersTests.cells(backend: self.backends[0].port), extra: self.redis.settings),
            files: ["tenants.yaml": CORSAnswersTests.tree(origins: [self.pages.origin])]
        )
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis?.stop()
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

    func acme(_ tenant: String) throws -> String {
        try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant)
    }

    /// `/app.html` with `calls` (`[name, path, token]`), from `origin`.
    func runApp(_ calls: [[String]], origin: String? = nil) async throws -> [String: [String: Any]] {
        var components = URLComponents()
        let encoded = String(decoding: try JSONSerialization.data(withJSONObject: calls), as: UTF8.self)
        components.queryItems = [URLQueryItem(name: "gateway", value: "http://127.0.0.1:\(self.port)"), URLQueryItem(name: "calls", value: encoded)]
        let reported = try await self.open("/app.html?\(components.percentEncodedQuery ?? "")", origin: origin)
        return reported.compactMapValues { $0 as? [String: Any] }
    }

    /// An app on the registered origin tells every refusal apart by status and problem `type`,
    /// reads the request id, the RateLimit fields and `Retry-After`, a route's exposed backend
    /// field and its tenant's branding; the same app on another origin reads nothing at all.
    func testAnAppReadsEachRefusalAndTheExposedFieldsFromItsOriginAndNothingFromAnother() async throws {
        let c1 = try self.acme("c1")
        let slow = try self.acme("slow")
        let down = try self.acme("cdown")
        let g1 = try TestIdentity.mint(issuer: "https://id.globex.test", key: TestIdentity.globex.privateKey, alg: "ES256", kid: "g-1", tenant: "g1")
        let globexForC1 = try TestIdentity.mint(issuer: "https://id.globex.test", key: TestIdentity.globex.privateKey, alg: "ES256", kid: "g-1", tenant: "c1")
        // The health check has taken the cell's one endpoint out before the page runs.
        XCTAssertTrue(try self.eventually(5) { try request(port: self.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(down)")]).status == 503 })
        let calls = [
            ["missing", "/v1/ledger", ""],
            ["bad", "/v1/ledger", String(c1.dropLast(4)) + "AAAA"],
            ["feature", "/v1/payroll", try self.acme("basic")],
            ["admitted", "/v1/ledger", slow],
            ["quota", "/v1/ledger", slow],
            ["down", "/v1/ledger", down],
            ["forwarded", "/v1/ledger/7?header=X-Ledger-Balance:42", c1],
            ["branding", "/v1/branding", c1],
            ["otherOEMsCustomer", "/v1/ledger", g1],
            ["otherOEMsIssuer", "/v1/ledger", globexForC1],
        ]

        let results = try await self.runApp(calls)
        func expect(_ name: String, _ status: Int, _ slug: String?, file: StaticString = #filePath, line: UInt = #line) {
            let result = results[name] ?? [:]
            XCTAssertEqual(result["status"] as? Int, status, "\(name): \(result)", file: file, line: line)
            XCTAssertEqual(result["type"] as? String, slug.map { "urn:erp-gateway:problem:\($0)" }, "\(name): \(result)", file: file, line: line)
            XCTAssertFalse((result["requestId"] as? String ?? "").isEmpty, "\(name): the request id is readable", file: file, line: line)
        }
        expect("missing", 401, "token-missing")
        expect("bad", 401, "bad-signature")
        expect("feature", 403, "feature-not-enabled")
        expect("admitted", 200, nil)
        expect("quota", 429, "quota-exceeded")
        expect("down", 503, "no-healthy-upstream")
        expect("forwarded", 200, nil)
        expect("branding", 200, nil)
        XCTAssertNotNil(results["admitted"]?["rateLimit"] as? String, "\(results["admitted"] ?? [:])")
        XCTAssertNotNil(results["admitted"]?["rateLimitPolicy"] as? String, "\(results["admitted"] ?? [:])")
        XCTAssertNotNil(results["quota"]?["rateLimit"] as? String, "\(results["quota"] ?? [:])")
        XCTAssertNotNil(results["quota"]?["retryAfter"] as? String, "\(results["quota"] ?? [:])")
        XCTAssertEqual(results["down"]?["retryAfter"] as? String, "1")
        XCTAssertEqual(results["forwarded"]?["balance"] as? String, "42", "the route exposes its backend's field")
        XCTAssertEqual(results["branding"]?["displayName"] as? String, "C1 Books", "the tenant's effective branding")

        // Another OEM's token from this origin: the status and type, and nothing of its tenant.
        expect("otherOEMsCustomer", 403, "origin-not-allowed")
        expect("otherOEMsIssuer", 403, "tenant-not-permitted")
        for name in ["otherOEMsCustomer", "otherOEMsIssuer"] {
            XCTAssertEqual(results[name]?["members"] as? [String], ["requestId", "status", "title", "type"], "\(results[name] ?? [:])")
        }

        // From an origin no node registered every call fails, and no answer is readable.
        let foreign = try await self.runApp(calls, origin: self.pages.otherOrigin)
        XCTAssertEqual(foreign.count, calls.count, "\(foreign)")
        for (name, result) in foreign {
            XCTAssertEqual(result["error"] as? String, "TypeError: Failed to fetch", "\(name): \(result)")
            XCTAssertNil(result["status"], "\(name): \(result)")
        }
    }
}
