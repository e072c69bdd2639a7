import Foundation
import XCTest

/// Through the real binary: paths a servlet container, a double decoder, a lax
/// UTF-8 decoder or a fragment-stripping server would read as another route are answered 400
/// `ambiguous-path` before any route, feature or quota is looked at, and never reach a backend.
final class AmbiguousPathTests: GatewayTestCase {
    var redis: RedisProcess!

    /// `c1` has `ledger` but not `payroll` nor `api-export`; `POST /v1/ledger/close` costs 10
    /// where the `/v1/ledger` prefix costs 1. Its day limit shows in `RateLimit` what was charged.
    static let tree = """
        catalog:
          features: [ledger, payroll, api-export]
          packages:
            basic: [ledger]
          routes:
            - { path: /v1/ledger, feature: ledger }
            - { path: /v1/ledger/close, method: POST, feature: ledger, cost: 10 }
            - { path: /v1/payroll, feature: payroll }
            - { path: /v1/export, feature: api-export }
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme }
          - { id: c1, kind: customer, parent: p1, package: basic, limits: { perDay: 1000 } }
        """

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(Self.tree, extra: self.redis.settings)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis.stop()
    }

    func bearer() throws -> (String, String) {
        ("Authorization", "Bearer \(try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1"))")
    }

    /// The customer's day budget left after an admitted request, from its `RateLimit` field.
    func dayRemaining(_ response: RawHTTPConnection.Response, file: StaticString = #filePath, line: UInt = #line) -> Int? {
        guard let field = response.header("ratelimit"), field.hasPrefix("\"customer-day\";r=") else {
            XCTFail("RateLimit: \(response.header("ratelimit") ?? "none")", file: file, line: line)
            return nil
        }
        return field.dropFirst("\"customer-day\";r=".count).split(separator: ";").first.flatMap { Int($0) }
    }

    func testTheIssuesRequestsAreRefusedAndReachNoBackend() throws {
        let token = try self.bearer()
        let cases: [(method: String, target: String, reason: String)] = [
            ("GET", "/v1/ledger/..;/payroll", "pathParameter"),
            ("GET", "/v1/ledger/%2e%2e;/export", "pathParameter"),
            ("GET", "/v1/ledger/..%3B/payroll", "pathParameter"),
            ("GET", "/v1/ledger/%252e%252e/payroll", "doubleEncoding"),
            ("GET", "/v1/ledger/%C0%AE%C0%AE/payroll", "invalidUTF8"),
            ("POST", "/v1/ledger/close#?x=1", "fragment"),
            ("POST", "/v1/ledger/close#", "fragment"),
        ]
        for (method, target, reason) in cases {
            let response = try request(port: self.port, method, target, headers: [token])
            try self.assertProblem(response, status: 400, slug: "ambiguous-path")
            XCTAssertTrue(self.gateway.waitForLog("reason=\(reason)"), "\(method) \(target): the log names \(reason)")
        }
        XCTAssertEqual(self.backends[0].statistics.requests, 0, "no refused request reached the backend")
    }

    func testRawNonASCIIBytesAreRefusedByTheHTTPDecoder() throws {
        // Raw UTF-8 (`café`) and raw overlong dots: the HTTP decoder refuses any byte above 0x7F
        // in the target before the path is looked at (RequestPath refuses them too, as
        // `rawNonASCII`, should one ever get that far).
        let (name, value) = try self.bearer()
        for raw: [UInt8] in [Array("caf\u{E9}".utf8), [0xC0, 0xAE, 0xC0, 0xAE]] {
            let connection = try RawHTTPConnection(port: self.port)
            try connection.send(
                Array("GET /v1/ledger/".utf8) + raw + Array("/payroll HTTP/1.1\r\nHost: gateway.test\r\n\(name): \(value)\r\n\r\n".utf8)
            )
            try self.assertProblem(connection.readResponse(), status: 400, slug: "malformed-request")
        }
        XCTAssertEqual(self.backends[0].statistics.requests, 0)
    }

    /// The query goes upstream as sent (docs/tokens.md): characters a URI should percent-encode
    /// but clients send raw anyway — a JSON filter's braces and quotes, `|`, `^`, `<`, `>`, a
    /// backtick — reach the backend byte for byte, not answered as a failure of the backend.
    func testTheQueryIsForwardedAsSentWithCharactersAURIShouldHaveEscaped() throws {
        let token = try self.bearer()
        for query in ["filter={\"id\":1}", "a=b|c^d", "x=<y>&z=`w`", "q=%zz{}"] {
            let target = "/v1/ledger?" + query
            let response = try request(port: self.port, "GET", target, headers: [token])
            XCTAssertEqual(response.status, 200, "\(target): \(response.text)")
            XCTAssertEqual(try SeenRequest(response).uri, target)
        }
    }

    func testTheCloseRouteIsChargedItsCostAndRefusalsNothing() throws {
        let token = try self.bearer()
        let first = try request(port: self.port, "POST", "/v1/ledger/close", headers: [token])
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(try SeenRequest(first).uri, "/v1/ledger/close")
        XCTAssertEqual(self.dayRemaining(first), 990, "the close route costs 10")

        let fragment = try request(port: self.port, "POST", "/v1/ledger/close#?x=1", headers: [token])
        try self.assertProblem(fragment, status: 400, slug: "ambiguous-path")

        let ledger = try request(port: self.port, "GET", "/v1/ledger/7", headers: [token])
        XCTAssertEqual(ledger.status, 200, ledger.text)
        XCTAssertEqual(self.dayRemaining(ledger), 989, "the ledger prefix costs 1; the refusal cost nothing")

        let encodedDots = try request(port: self.port, "GET", "/v1/ledger/x/%2E%2E/caf%C3%A9", headers: [token])
        XCTAssertEqual(encodedDots.status, 200, encodedDots.text)
        XCTAssertEqual(try SeenRequest(encodedDots).uri, "/v1/ledger/caf%C3%A9", "legitimate escapes still pass, normalized")
        XCTAssertEqual(self.backends[0].statistics.requests, 3)
    }
}
